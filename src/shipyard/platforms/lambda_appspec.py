"""The Lambda appspec (reference codedeploy.md §3.2): one ``AWS::Lambda::Function``
resource naming the function, its alias and the two versions, and hook functions for
``BeforeAllowTraffic`` and ``AfterAllowTraffic``. The document rules it shares with
the ECS appspec are in ``appspec_doc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidRevision
from shipyard.platforms import appspec_doc
from shipyard.platforms.appspec_doc import FUNCTION_NAME_RE as NAME_RE
from shipyard.platforms.appspec_doc import MAX_APPSPEC_BYTES as MAX_APPSPEC_BYTES

RESOURCE_TYPE = "AWS::Lambda::Function"
HOOK_EVENTS = ("BeforeAllowTraffic", "AfterAllowTraffic")
VERSION_RE = re.compile(r"[1-9][0-9]{0,9}")
ALIAS_RE = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")


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
    top = appspec_doc.load(text)
    props = appspec_doc.properties(top, RESOURCE_TYPE)
    where = "Resources[0].Properties"
    get = appspec_doc.get
    function = appspec_doc.name(get(props, "name", where), f"{where}.Name", NAME_RE)
    alias = appspec_doc.name(get(props, "alias", where), f"{where}.Alias", ALIAS_RE)
    current = _version(get(props, "currentversion", where), f"{where}.CurrentVersion")
    target = _version(get(props, "targetversion", where), f"{where}.TargetVersion")
    if current == target:
        raise InvalidRevision(
            f"{where}.TargetVersion must differ from CurrentVersion (both are {current})"
        )
    hooks = appspec_doc.hooks(top, HOOK_EVENTS, "Lambda")
    return LambdaAppSpec(function, alias, current, target, hooks)


def _version(value: Any, what: str) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not VERSION_RE.fullmatch(text):
        raise InvalidRevision(f"{what} must be a published version number; got {value!r}")
    return text
