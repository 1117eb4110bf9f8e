"""The Lambda appspec (reference codedeploy.md §3.2): one ``AWS::Lambda::Function``
resource naming the function, its alias and the two versions, and hook functions for
``BeforeAllowTraffic`` and ``AfterAllowTraffic``.

YAML or JSON (JSON is YAML). Keys are matched case-insensitively: AWS's own guide spells
them both ways. Every error names the field at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shipyard.errors import InvalidRevision

RESOURCE_TYPE = "AWS::Lambda::Function"
HOOK_EVENTS = ("BeforeAllowTraffic", "AfterAllowTraffic")
VERSION_RE = re.compile(r"[1-9][0-9]{0,9}")
# Lambda's own name rules, for a plain function name (no ARN, no qualifier).
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ALIAS_RE = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")
MAX_APPSPEC_BYTES = 256 * 1024


@dataclass(frozen=True)
class LambdaAppSpec:
    function: str
    alias: str
    current_version: str
    target_version: str
    hooks: dict[str, str] = field(default_factory=dict)  # event -> hook function name

    @property
    def target_id(self) -> str:
        """The deployment target: the alias the traffic of which moves."""
        return f"{self.function}:{self.alias}"


def parse(text: str) -> LambdaAppSpec:
    if len(text.encode()) > MAX_APPSPEC_BYTES:
        raise InvalidRevision(f"The appspec is larger than {MAX_APPSPEC_BYTES} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidRevision(f"The appspec is not valid YAML or JSON{line}") from None
    top = _mapping(doc, "the appspec")
    version = _get(top, "version", "the appspec")
    if str(version) not in ("0.0", "0"):
        raise InvalidRevision(f"appspec version must be 0.0; got {version!r}")
    resource = _resource(_get(top, "resources", "the appspec"))
    props = _mapping(_get(resource, "properties", "Resources[0]"), "Resources[0].Properties")
    where = "Resources[0].Properties"
    function = _name(_get(props, "name", where), f"{where}.Name", NAME_RE)
    alias = _name(_get(props, "alias", where), f"{where}.Alias", ALIAS_RE)
    current = _version(_get(props, "currentversion", where), f"{where}.CurrentVersion")
    target = _version(_get(props, "targetversion", where), f"{where}.TargetVersion")
    if current == target:
        raise InvalidRevision(
            f"{where}.TargetVersion must differ from CurrentVersion (both are {current})"
        )
    return LambdaAppSpec(function, alias, current, target, _hooks(_find(top, "hooks")))


def _resource(value: Any) -> dict[str, Any]:
    if not isinstance(value, list) or len(value) != 1:
        raise InvalidRevision("appspec Resources must be a list of exactly one resource")
    entry = _mapping(value[0], "Resources[0]")
    if len(entry) != 1:
        raise InvalidRevision("Resources[0] must be one named resource (name: {Type, Properties})")
    ((name, resource),) = entry.items()
    resource = _mapping(resource, f"Resources[0].{name}")
    kind = _get(resource, "type", f"Resources[0].{name}")
    if kind != RESOURCE_TYPE:
        raise InvalidRevision(f"Resources[0].{name}.Type must be {RESOURCE_TYPE}; got {kind!r}")
    return resource


def _hooks(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    items = value if isinstance(value, list) else [value]
    hooks: dict[str, str] = {}
    for item in items:
        for key, function in _mapping(item, "Hooks").items():
            event = next((e for e in HOOK_EVENTS if e.lower() == str(key).lower()), None)
            if event is None:
                raise InvalidRevision(
                    f"Hooks: {key!r} is not a Lambda lifecycle hook "
                    f"(use {' or '.join(HOOK_EVENTS)})"
                )
            if event in hooks:
                raise InvalidRevision(f"Hooks: {event} is given twice")
            hooks[event] = _name(function, f"Hooks.{event}", NAME_RE)
    return hooks


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRevision(f"{what} must be a mapping")
    return value


def _find(doc: dict[str, Any], key: str) -> Any:
    return next((v for k, v in doc.items() if str(k).lower() == key), None)


def _get(doc: dict[str, Any], key: str, where: str) -> Any:
    value = _find(doc, key)
    if value is None:
        spelled = {"currentversion": "CurrentVersion", "targetversion": "TargetVersion"}
        raise InvalidRevision(f"{where} needs {spelled.get(key, key.capitalize())}")
    return value


def _name(value: Any, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRevision(f"{what} is not a valid Lambda name: {value!r}")
    return value


def _version(value: Any, what: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not VERSION_RE.fullmatch(text):
        raise InvalidRevision(f"{what} must be a published version number; got {value!r}")
    return text
