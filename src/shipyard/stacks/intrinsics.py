"""Evaluating intrinsic functions, and finding what a value refers to.

``resolve`` evaluates a value against a ``Scope``: parameter values (pseudo parameters
included), condition results and a ``Lookup`` for resources (their physical ids and
attributes, known once they exist). ``AWS::NoValue`` removes the key or list item it
stands in. ``references`` lists the resources a value names, which is all the
dependency graph needs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.stacks.errors import TemplateError

NO_VALUE_NAME = "AWS::NoValue"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_SUB_NAME = re.compile(r"[A-Za-z0-9_.:]+")
CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")


class Lookup(Protocol):
    """Resources as the current operation knows them."""

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...


class Symbolic:
    """Resources not resolved yet: each reference reads as its ``${...}`` text (change
    sets compare templates this way, before anything exists)."""

    def ref(self, logical_id: str) -> Any:
        return "${" + logical_id + "}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return "${" + logical_id + "." + attribute + "}"


@dataclass(frozen=True)
class Scope:
    parameters: Mapping[str, Any]
    conditions: Mapping[str, bool] = field(default_factory=dict)
    resources: Lookup = field(default_factory=Symbolic)
    mappings: Mapping[str, Any] = field(default_factory=dict)


def single_key(value: Any) -> tuple[str, Any] | None:
    """``(function, argument)`` when ``value`` is an intrinsic function call."""
    if isinstance(value, dict) and len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key, argument
    return None


def resolve(value: Any, scope: Scope) -> Any:
    call = single_key(value)
    if call is not None:
        return _FUNCTIONS.get(call[0], _unknown)(call[0], call[1], scope)
    if isinstance(value, dict):
        resolved = {key: resolve(item, scope) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}
    if isinstance(value, list):
        return [item for item in (resolve(v, scope) for v in value) if item is not NO_VALUE]
    return value


def _unknown(name: str, _argument: Any, _scope: Scope) -> Any:
    raise TemplateError(f"Template format error: Unrecognized function {name!r}")


def _args(name: str, argument: Any, count: int) -> list[Any]:
    if not isinstance(argument, list) or len(argument) != count:
        raise TemplateError(f"Template error: {name} requires a list of {count} arguments")
    return argument


def _ref(_name: str, argument: Any, scope: Scope) -> Any:
    if not isinstance(argument, str):
        raise TemplateError("Template error: Ref requires a string argument")
    if argument == NO_VALUE_NAME:
        return NO_VALUE
    if argument in scope.parameters:
        return scope.parameters[argument]
    return scope.resources.ref(argument)


def _get_att(_name: str, argument: Any, scope: Scope) -> Any:
    logical_id, attribute = get_att_target(argument)
    return scope.resources.get_att(logical_id, attribute)


def get_att_target(argument: Any) -> tuple[str, str]:
    if isinstance(argument, str) and "." in argument:
        argument = argument.split(".", 1)
    if (
        isinstance(argument, list)
        and len(argument) == 2
        and all(isinstance(part, str) for part in argument)
    ):
        return argument[0], argument[1]
    raise TemplateError(
        "Template error: every Fn::GetAtt object requires two non-empty parameters, "
        "the resource name and the resource attribute"
    )


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TemplateError(f"Template error: {where} values must resolve to strings")


def _sub(_name: str, argument: Any, scope: Scope) -> Any:
    text, variables = sub_parts(argument)
    values = {key: resolve(item, scope) for key, item in variables.items()}

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in values:
            return _text(values[name], "Fn::Sub")
        if name in scope.parameters:
            return _text(scope.parameters[name], "Fn::Sub")
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return _text(scope.resources.get_att(logical_id, attribute), "Fn::Sub")
        return _text(scope.resources.ref(name), "Fn::Sub")

    return _SUB_VARIABLE.sub(replace, text)


def sub_parts(argument: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(argument, str):
        return argument, {}
    if (
        isinstance(argument, list)
        and len(argument) == 2
        and isinstance(argument[0], str)
        and isinstance(argument[1], dict)
    ):
        return argument[0], argument[1]
    raise TemplateError(
        "Template error: One or more Fn::Sub intrinsic functions don't specify expected "
        "arguments. Specify a string as first argument, and an optional second argument "
        "to specify a mapping of values to replace in the string"
    )


def sub_variables(text: str) -> Iterator[str]:
    """The ``${...}`` names of an Fn::Sub string (``${!x}`` is a literal)."""
    for found in _SUB_VARIABLE.finditer(text):
        name = found.group(1)
        if name.startswith("!"):
            continue
        if not _SUB_NAME.fullmatch(name):
            raise TemplateError(
                "Template error: variable names in Fn::Sub syntax must contain only "
                "alphanumeric characters, underscores, periods, and colons"
            )
        yield name


def _join(name: str, argument: Any, scope: Scope) -> Any:
    delimiter, items = _args(name, argument, 2)
    resolved = resolve(items, scope)
    if not isinstance(delimiter, str) or not isinstance(resolved, list):
        raise TemplateError("Template error: Fn::Join requires a delimiter and a list of values")
    return delimiter.join(_text(item, "Fn::Join") for item in resolved)


def _select(name: str, argument: Any, scope: Scope) -> Any:
    index, items = (resolve(part, scope) for part in _args(name, argument, 2))
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise TemplateError("Template error: Fn::Select requires a number as its index") from None
    if not isinstance(items, list) or not 0 <= position < len(items):
        raise TemplateError("Template error: Fn::Select cannot select nonexistent value at index")
    return items[position]


def _split(name: str, argument: Any, scope: Scope) -> Any:
    delimiter, text = (resolve(part, scope) for part in _args(name, argument, 2))
    if not isinstance(delimiter, str) or not isinstance(text, str) or not delimiter:
        raise TemplateError("Template error: Fn::Split requires a delimiter and a string")
    return text.split(delimiter)


def _if(name: str, argument: Any, scope: Scope) -> Any:
    condition, when_true, when_false = _args(name, argument, 3)
    return resolve(when_true if condition_value(condition, scope) else when_false, scope)


def condition_value(name: Any, scope: Scope) -> bool:
    if not isinstance(name, str) or name not in scope.conditions:
        raise TemplateError(f"Template error: unresolved condition dependency {name} in Fn::If")
    return scope.conditions[name]


def _equals(name: str, argument: Any, scope: Scope) -> Any:
    left, right = (resolve(part, scope) for part in _args(name, argument, 2))
    return _comparable(left) == _comparable(right)


def _comparable(value: Any) -> Any:
    """Fn::Equals compares the values as strings (``1`` equals ``"1"``)."""
    return _text(value, "Fn::Equals") if isinstance(value, (bool, int, float)) else value


def _boolean(value: Any, scope: Scope) -> bool:
    result = resolve(value, scope)
    if not isinstance(result, bool):
        raise TemplateError("Template error: condition functions must resolve to true or false")
    return result


def _not(name: str, argument: Any, scope: Scope) -> Any:
    (operand,) = _args(name, argument, 1)
    return not _boolean(operand, scope)


def _many(name: str, argument: Any) -> list[Any]:
    if not isinstance(argument, list) or not 2 <= len(argument) <= 10:
        raise TemplateError(f"Template error: {name} requires between 2 and 10 conditions")
    return argument


def _and(name: str, argument: Any, scope: Scope) -> Any:
    return all([_boolean(part, scope) for part in _many(name, argument)])


def _or(name: str, argument: Any, scope: Scope) -> Any:
    return any([_boolean(part, scope) for part in _many(name, argument)])


def _condition(_name: str, argument: Any, scope: Scope) -> Any:
    return condition_value(argument, scope)


def _find_in_map(name: str, argument: Any, scope: Scope) -> Any:
    mapping, top, second = (resolve(part, scope) for part in _args(name, argument, 3))
    try:
        return scope.mappings[mapping][top][second]
    except (KeyError, TypeError):
        raise TemplateError(
            f"Template error: Unable to get mapping for {mapping}::{top}::{second}"
        ) from None


def _base64(_name: str, argument: Any, scope: Scope) -> Any:
    return base64.b64encode(_text(resolve(argument, scope), "Fn::Base64").encode()).decode()


def _import_value(name: str, _argument: Any, _scope: Scope) -> Any:
    raise TemplateError(f"Template error: {name} is not supported by Shipyard")


_FUNCTIONS = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::Not": _not,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Condition": _condition,
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": _base64,
    "Fn::ImportValue": _import_value,
}


def references(value: Any) -> Iterator[tuple[str, str | None]]:
    """``(name, attribute or None)`` for every Ref, Fn::GetAtt and Fn::Sub variable in
    ``value`` (parameters and pseudo parameters included; the caller sorts them out)."""
    call = single_key(value)
    if call is not None:
        name, argument = call
        if name == "Ref" and isinstance(argument, str):
            yield argument, None
            return
        if name == "Fn::GetAtt":
            yield get_att_target(argument)
            return
        if name == "Fn::Sub":
            text, variables = sub_parts(argument)
            for variable in sub_variables(text):
                if variable in variables:
                    continue
                logical_id, _, attribute = variable.partition(".")
                yield (logical_id, attribute) if attribute else (variable, None)
            yield from references(variables)
            return
        yield from references(argument)
        return
    for item in _children(value):
        yield from references(item)


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else []


def references_in_text(value: Any) -> Iterator[tuple[str, str | None]]:
    """The ``${Name}`` / ``${Name.Attr}`` left in a value resolved with ``Symbolic``."""
    if isinstance(value, str):
        for found in _SUB_VARIABLE.finditer(value):
            logical_id, _, attribute = found.group(1).partition(".")
            yield logical_id, attribute or None
    for item in _children(value):
        yield from references_in_text(item)
