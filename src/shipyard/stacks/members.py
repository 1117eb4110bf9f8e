"""Reading a CloudFormation request's members, and the errors the API answers with."""

from __future__ import annotations

import re
from typing import Any

from shipyard.errors import ApiError
from shipyard.server.query_protocol import QueryCall, members
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.parameters import Given
from shipyard.store import stacks as store

_NAME = re.compile(r"[a-zA-Z][-a-zA-Z0-9]*")
Row = dict[str, Any]


def validation(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def from_template_error(exc: TemplateError) -> ApiError:
    return validation(exc.message)


def text(call: QueryCall, key: str, required: bool = False) -> str:
    value = call.params.get(key)
    if value is None or value == "":
        if required:
            raise validation(
                f"1 validation error detected: Value null at '{key[:1].lower() + key[1:]}' "
                "failed to satisfy constraint: Member must not be null"
            )
        return ""
    if not isinstance(value, str):
        raise validation(f"{key} must be a string")
    return value


def flag(call: QueryCall, key: str) -> bool:
    return text(call, key).lower() == "true"


def name(call: QueryCall, key: str, what: str) -> str:
    value = text(call, key, required=True)
    if len(value) > 128 or not (_NAME.fullmatch(value) or value.startswith("arn:")):
        raise validation(
            f"1 validation error detected: Value '{value}' at '{what}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*"
        )
    return value


def template_body(call: QueryCall, previous: str | None = None) -> str:
    """TemplateBody, or the stack's own with UsePreviousTemplate."""
    if flag(call, "UsePreviousTemplate"):
        if previous is None:
            raise validation("UsePreviousTemplate is only valid for an existing stack")
        return previous
    if text(call, "TemplateURL"):
        raise validation("TemplateURL is not supported by Shipyard; send TemplateBody")
    body = text(call, "TemplateBody")
    if not body:
        raise validation("Either Template URL or Template Body must be specified.")
    return body


def given_parameters(call: QueryCall) -> list[Given]:
    given = []
    for item in members(call.params.get("Parameters")):
        if not isinstance(item, dict) or not item.get("ParameterKey"):
            raise validation("Every Parameters member must have a ParameterKey")
        given.append(
            Given(
                item["ParameterKey"],
                item.get("ParameterValue"),
                str(item.get("UsePreviousValue", "")).lower() == "true",
            )
        )
    return given


def list_member(call: QueryCall, key: str) -> list[Any]:
    return members(call.params.get(key))


def existing_stack(conn: Any, stack_name: str) -> Row:
    found = store.find_stack(conn, stack_name)
    if found is None:
        raise validation(f"Stack with id {stack_name} does not exist")
    return found
