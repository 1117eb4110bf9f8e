"""Template text to a document: JSON, or YAML with CloudFormation's short forms.

``!Ref X`` becomes ``{"Ref": "X"}``, ``!Condition X`` ``{"Condition": "X"}``,
``!GetAtt A.B`` ``{"Fn::GetAtt": ["A", "B"]}`` and every other ``!Name v``
``{"Fn::Name": v}``, as the AWS CLI's loader does. Dates stay strings
(``AWSTemplateFormatVersion: 2010-09-09`` unquoted is common).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from shipyard.stacks.errors import TemplateError, format_error

MAX_TEMPLATE_BYTES = 1024 * 1024  # CloudFormation's TemplateURL limit; bodies are 51,200


class _Loader(yaml.SafeLoader):
    """SafeLoader with the short forms and without the timestamp type."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_form(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref" or suffix == "Condition":
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _short_form)


def parse(body: str) -> dict[str, Any]:
    """The template document; a TemplateError with CloudFormation's wording if not one."""
    if len(body.encode()) > MAX_TEMPLATE_BYTES:
        raise TemplateError(
            f"Templates may be at most {MAX_TEMPLATE_BYTES} bytes; this one is larger"
        )
    stripped = body.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(body)
        except json.JSONDecodeError as exc:
            raise format_error(
                f"JSON not well-formed. (line {exc.lineno}, column {exc.colno})"
            ) from None
    else:
        try:
            document = yaml.load(body, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise format_error(f"YAML not well-formed.{where}") from None
        except yaml.YAMLError:
            raise format_error("YAML not well-formed.") from None
    if not isinstance(document, dict):
        raise format_error("A template must be a JSON or YAML object")
    return document
