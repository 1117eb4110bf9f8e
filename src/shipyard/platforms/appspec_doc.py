"""What the Lambda and ECS appspecs share (reference codedeploy.md §3.2-§3.3): a YAML
or JSON document (JSON is YAML) with ``version: 0.0``, exactly one named resource of
the platform's type, and hooks naming functions for the platform's hookable events.

Keys are matched case-insensitively: AWS's own guide spells them both ways. Every
error names the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from shipyard.errors import InvalidRevision

MAX_APPSPEC_BYTES = 256 * 1024
# Lambda's own name rules, for a plain function name (no ARN, no qualifier).
FUNCTION_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How a missing key is spelled in errors when capitalising it is not enough.
_SPELLED = {
    "currentversion": "CurrentVersion",
    "targetversion": "TargetVersion",
    "taskdefinition": "TaskDefinition",
    "loadbalancerinfo": "LoadBalancerInfo",
    "containername": "ContainerName",
    "containerport": "ContainerPort",
}


def load(text: str) -> dict[str, Any]:
    """The appspec's top-level mapping, its size, syntax and version checked."""
    if len(text.encode()) > MAX_APPSPEC_BYTES:
        raise InvalidRevision(f"The appspec is larger than {MAX_APPSPEC_BYTES} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidRevision(f"The appspec is not valid YAML or JSON{line}") from None
    top = mapping(doc, "the appspec")
    version = get(top, "version", "the appspec")
    if str(version) not in ("0.0", "0"):
        raise InvalidRevision(f"appspec version must be 0.0; got {version!r}")
    return top


def properties(top: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """The Properties of the appspec's one resource, which must be ``resource_type``."""
    value = get(top, "resources", "the appspec")
    if not isinstance(value, list) or len(value) != 1:
        raise InvalidRevision("appspec Resources must be a list of exactly one resource")
    entry = mapping(value[0], "Resources[0]")
    if len(entry) != 1:
        raise InvalidRevision("Resources[0] must be one named resource (name: {Type, Properties})")
    ((name, resource),) = entry.items()
    resource = mapping(resource, f"Resources[0].{name}")
    kind = get(resource, "type", f"Resources[0].{name}")
    if kind != resource_type:
        raise InvalidRevision(f"Resources[0].{name}.Type must be {resource_type}; got {kind!r}")
    return mapping(get(resource, "properties", "Resources[0]"), "Resources[0].Properties")


def hooks(top: dict[str, Any], events: Sequence[str], platform: str) -> dict[str, str]:
    """Hook event -> function name; only ``events`` may be hooked."""
    value = find(top, "hooks")
    if value is None:
        return {}
    items = value if isinstance(value, list) else [value]
    found: dict[str, str] = {}
    for item in items:
        for key, function in mapping(item, "Hooks").items():
            event = next((e for e in events if e.lower() == str(key).lower()), None)
            if event is None:
                raise InvalidRevision(
                    f"Hooks: {key!r} is not {_article(platform)} {platform} lifecycle hook "
                    f"(use {', '.join(events[:-1])} or {events[-1]})"
                )
            if event in found:
                raise InvalidRevision(f"Hooks: {event} is given twice")
            found[event] = name(function, f"Hooks.{event}", FUNCTION_NAME_RE)
    return found


def mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRevision(f"{what} must be a mapping")
    return value


def find(doc: dict[str, Any], key: str) -> Any:
    return next((v for k, v in doc.items() if str(k).lower() == key), None)


def get(doc: dict[str, Any], key: str, where: str) -> Any:
    value = find(doc, key)
    if value is None:
        raise InvalidRevision(f"{where} needs {_SPELLED.get(key, key.capitalize())}")
    return value


def name(value: Any, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRevision(f"{what} is not a valid Lambda name: {value!r}")
    return value


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"
