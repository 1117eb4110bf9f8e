"""CloudFormation's ECS properties as ECS API arguments, by the API's own model.

The ECS resource types' properties are the API's members in PascalCase (``PortMappings``
→ ``portMappings``, ``EFSVolumeConfiguration`` → ``efsVolumeConfiguration``), except for
a few top-level names each type renames. Walking botocore's input shape converts the
names, leaves the keys of maps (``DockerLabels``, log ``Options``) as written, turns
numbers and booleans that came through parameters as text into what the API takes (as
CloudFormation does by the type's schema), and refuses a key the API does not have with
the message CloudFormation's schema check gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shipyard.stacks.providers.protocol import ProviderError

_INTEGER = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def invalid(logical_id: str, message: str) -> ProviderError:
    return ProviderError(
        f"Properties validation failed for resource {logical_id} with message: {message}"
    )


def arguments(
    client: Any,
    operation: str,
    logical_id: str,
    props: Mapping[str, Any],
    names: Mapping[str, str],
) -> dict[str, Any]:
    """The ``operation``'s arguments from ``props``; ``names`` maps each property the
    type has to its API member (one the API lacks is accepted and not sent)."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    unknown = [key for key in props if key not in names]
    if unknown:
        raise invalid(logical_id, f"#: extraneous key [{unknown[0]}] is not permitted")
    return {
        names[key]: _value(members[names[key]], value, f"#/{key}", logical_id)
        for key, value in props.items()
        if names[key] in members
    }


def _value(shape: Any, value: Any, path: str, logical_id: str) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        converted = {}
        for key, item in value.items():
            name = members.get(str(key).lower())
            if name is None:
                raise invalid(logical_id, f"{path}: extraneous key [{key}] is not permitted")
            converted[name] = _value(shape.members[name], item, f"{path}/{key}", logical_id)
        return converted
    if kind == "list" and isinstance(value, list):
        return [
            _value(shape.member, item, f"{path}/{i}", logical_id) for i, item in enumerate(value)
        ]
    if kind == "map" and isinstance(value, dict):
        return {
            key: _value(shape.value, item, f"{path}/{key}", logical_id)
            for key, item in value.items()
        }
    return _scalar(kind, value)


def _scalar(kind: str, value: Any) -> Any:
    """Text that spells the member's type as that type; anything else as it is (the API
    or botocore refuses what is wrong, in its own words)."""
    if isinstance(value, str):
        if kind in ("integer", "long") and _INTEGER.fullmatch(value):
            return int(value)
        if kind in ("double", "float") and _NUMBER.fullmatch(value):
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind == "string" and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    elif kind in ("double", "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
