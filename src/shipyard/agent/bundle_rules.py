"""The rules a bundle must meet, shared by ``shipyard push``/``validate`` and the agent.

Two kinds of check, both pure of any network or server dependency so the agent can
import this module cheaply:

- ``key_problems(text)``: keys in the appspec that nothing reads (``hook:`` for
  ``hooks:``, ``Files:``, an event named ``AfterInstal``), each with its line and a
  "did you mean". A typo here used to give a deployment that succeeded doing nothing.
- ``tree_problems(root, sources, scripts)``: ``files`` sources and hook scripts missing
  from the bundle, scripts with CRLF line endings (``bash\\r: No such file``) and scripts
  that are not executable (the agent makes them so; a warning, not a refusal).

Every problem names the file inside the bundle and, where there is one, the line.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from shipyard.model import HOOK_COMMANDS

APPSPEC_KEYS = ("version", "os", "files", "permissions", "hooks", "file_exists_behavior")
HOOK_EVENTS = tuple(sorted(HOOK_COMMANDS))
# Events the agent runs itself: a script cannot be hooked to them.
UNHOOKABLE_EVENTS = ("DownloadBundle", "Install", "BlockTraffic", "AllowTraffic")
SCRIPT_KEYS = ("location", "timeout", "runas", "sudo")
FILE_KEYS = ("source", "destination")
PERMISSION_KEYS = (
    "object",
    "pattern",
    "except",
    "owner",
    "group",
    "mode",
    "acls",
    "context",
    "type",
)
SCRIPT_SCAN_BYTES = 1 << 20  # CRLF is looked for in the first MiB of a script


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a bundle; ``fatal`` problems refuse it, others only warn."""

    path: str  # inside the bundle, e.g. "appspec.yml" or "scripts/start.sh"
    line: int | None
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'hooks'?)`` when a known name is close to ``word``, else ``""``."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


# ---------------------------------------------------------------------- appspec keys


def key_problems(text: str, name: str = "appspec.yml") -> list[Problem]:
    """Unknown keys and event names in an appspec, each with its line.

    YAML that does not parse yields nothing here: the parser reports it with its own line.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    problems: list[Problem] = []
    for key, value in root.value:
        word = str(key.value)
        if word not in APPSPEC_KEYS:
            hint = f"; an EC2/on-premises appspec has {', '.join(APPSPEC_KEYS)}"
            problems.append(_unknown(name, key, "key", APPSPEC_KEYS, hint))
        elif word == "hooks" and isinstance(value, yaml.MappingNode):
            problems += _hook_problems(name, value)
        elif word in ("files", "permissions") and isinstance(value, yaml.SequenceNode):
            known = FILE_KEYS if word == "files" else PERMISSION_KEYS
            problems += [
                _unknown(name, entry_key, f"key in a {word} entry", known)
                for entry in value.value
                for entry_key in _mapping_keys(entry)
                if str(entry_key.value) not in known
            ]
    return problems


def _unknown(
    name: str, node: yaml.Node, what: str, known: Sequence[str], hint: str = ""
) -> Problem:
    word = str(node.value)
    message = f"unknown {what} '{word}'{did_you_mean(word, known) or hint}"
    return Problem(name, node.start_mark.line + 1, message)


def _hook_problems(name: str, hooks: yaml.MappingNode) -> list[Problem]:
    problems: list[Problem] = []
    for event, scripts in hooks.value:
        word = str(event.value)
        if word in UNHOOKABLE_EVENTS:
            problems.append(
                Problem(
                    name,
                    event.start_mark.line + 1,
                    f"event '{word}' is run by the agent itself: no script can be hooked to it "
                    f"(hookable: {', '.join(HOOK_EVENTS)})",
                )
            )
        elif word not in HOOK_EVENTS:
            hint = f"; events are {', '.join(HOOK_EVENTS)}"
            problems.append(_unknown(name, event, "hook event", HOOK_EVENTS, hint))
        if isinstance(scripts, yaml.SequenceNode):
            for script in scripts.value:
                problems += [
                    _unknown(name, key, "key in a hook script", SCRIPT_KEYS)
                    for key in _mapping_keys(script)
                    if str(key.value) not in SCRIPT_KEYS
                ]
    return problems


def _mapping_keys(node: yaml.Node) -> list[yaml.Node]:
    return [key for key, _ in node.value] if isinstance(node, yaml.MappingNode) else []


def first_fatal(problems: Iterable[Problem]) -> Problem | None:
    return next((p for p in problems if p.fatal), None)


# ------------------------------------------------------------------ the bundle's files


def tree_problems(
    root: Path, sources: Iterable[str], scripts: Iterable[str], appspec_name: str = "appspec.yml"
) -> list[Problem]:
    """What the bundle at ``root`` lacks for its appspec's ``files`` and hook scripts."""
    problems: list[Problem] = []
    for source in sources:
        inside = source.lstrip("/")
        if inside and not os.path.lexists(root / inside):
            problems.append(
                Problem(appspec_name, None, f"files source '{source}' is not in the bundle")
            )
    for location in dict.fromkeys(scripts):
        problems += _script_problems(root, location, appspec_name)
    return problems


def _script_problems(root: Path, location: str, appspec_name: str) -> list[Problem]:
    path = root / location
    try:
        mode = path.stat().st_mode
    except OSError:
        return [Problem(appspec_name, None, f"hook script '{location}' is not in the bundle")]
    if not stat.S_ISREG(mode):
        return [Problem(location, None, "hook script is not a regular file")]
    problems: list[Problem] = []
    line = _first_crlf_line(path)
    if line is not None:
        problems.append(
            Problem(
                location,
                line,
                "Windows (CRLF) line endings: the script cannot run on Linux "
                "(convert it with dos2unix or: sed -i 's/\\r$//' FILE)",
            )
        )
    if not mode & 0o111:
        problems.append(
            Problem(
                location,
                None,
                "not executable; the agent makes it so, but chmod +x it in the source",
                fatal=False,
            )
        )
    return problems


def _first_crlf_line(path: Path) -> int | None:
    try:
        with path.open("rb") as script:
            head = script.read(SCRIPT_SCAN_BYTES)
    except OSError:
        return None
    at = head.find(b"\r\n")
    return None if at < 0 else head.count(b"\n", 0, at) + 1
