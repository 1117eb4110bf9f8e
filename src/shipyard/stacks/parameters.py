"""Parameter values: what the caller gave, the previous value, or the default, checked
against the declaration (Type, AllowedValues, AllowedPattern, lengths, bounds)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.stacks.errors import TemplateError

PSEUDO = (
    "AWS::AccountId",
    "AWS::Region",
    "AWS::StackName",
    "AWS::StackId",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NotificationARNs",
    "AWS::NoValue",
)
_LIST_TYPES = ("CommaDelimitedList", "List<")


@dataclass(frozen=True)
class Given:
    """One Parameters member of a request."""

    key: str
    value: str | None = None
    use_previous: bool = False


def pseudo_values(region: str, account: str, stack_name: str, stack_id: str) -> dict[str, Any]:
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


def declared_type(declaration: Mapping[str, Any]) -> str:
    return str(declaration.get("Type", "String"))


def resolve_parameters(
    declarations: Mapping[str, Mapping[str, Any]],
    given: list[Given],
    previous: Mapping[str, str],
) -> dict[str, str]:
    """Each declared parameter's value as a string (lists comma-joined), or
    TemplateError with CloudFormation's message."""
    undeclared = [g.key for g in given if g.key not in declarations]
    if undeclared:
        raise TemplateError(f"Parameters: [{', '.join(undeclared)}] do not exist in the template")
    by_key = {g.key: g for g in given}
    values: dict[str, str] = {}
    missing: list[str] = []
    for key, declaration in declarations.items():
        found = by_key.get(key)
        if found is not None and found.use_previous:
            if key not in previous:
                raise TemplateError(
                    f"Invalid input for parameter key {key}. Cannot specify usePreviousValue "
                    "as true for a parameter key not in the previous template"
                )
            values[key] = previous[key]
        elif found is not None and found.value is not None:
            values[key] = found.value
        elif "Default" in declaration:
            values[key] = _default_text(declaration["Default"])
        else:
            missing.append(key)
    if missing:
        raise TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    for key, value in values.items():
        check_value(key, declarations[key], value)
    return values


def _default_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_value(key: str, declaration: Mapping[str, Any], value: str) -> None:
    kind = declared_type(declaration)
    items = value.split(",") if kind.startswith(_LIST_TYPES) else [value]
    numeric = kind in ("Number", "List<Number>")
    allowed = declaration.get("AllowedValues")
    for item in items:
        if numeric and not _is_number(item):
            raise TemplateError(f"Parameter '{key}' must be a number.")
        if isinstance(allowed, list) and item not in [_default_text(a) for a in allowed]:
            raise TemplateError(f"Parameter '{key}' must be one of AllowedValues")
        pattern = declaration.get("AllowedPattern")
        if isinstance(pattern, str) and not re.fullmatch(pattern, item):
            raise TemplateError(f"Parameter '{key}' must match pattern {pattern}")
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        raise TemplateError(
            f"Parameter '{key}' must contain at least {declaration['MinLength']} characters"
        )
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        raise TemplateError(
            f"Parameter '{key}' must contain at most {declaration['MaxLength']} characters"
        )
    if numeric and "MinValue" in declaration and float(value) < float(declaration["MinValue"]):
        raise TemplateError(
            f"Parameter '{key}' must be a number not less than {declaration['MinValue']}"
        )
    if numeric and "MaxValue" in declaration and float(value) > float(declaration["MaxValue"]):
        raise TemplateError(
            f"Parameter '{key}' must be a number not greater than {declaration['MaxValue']}"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def typed_values(
    declarations: Mapping[str, Mapping[str, Any]], values: Mapping[str, str]
) -> dict[str, Any]:
    """What ``Ref`` to each parameter gives: lists for list types, else the string."""
    return {
        key: value.split(",") if declared_type(declarations[key]).startswith(_LIST_TYPES) else value
        for key, value in values.items()
    }
