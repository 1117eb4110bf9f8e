"""Parse and validate an EC2/on-premises ``appspec.yml`` the way the stock agent does.

``parse(text)`` returns an :class:`AppSpec` or raises :class:`AppSpecError` with one
readable message naming the offending entry. The rules are the stock agent's
(``application_specification/*.rb``), with these deliberate choices:

- ``version`` must equal 0.0. The agent compares against the *number* 0.0, so
  ``version: 0.0`` (and ``version: 0``) pass; Shipyard also accepts the quoted string
  ``"0.0"``, which the stock agent rejects, because it is what the user guide prints.
- ``os`` must be ``linux``: this agent runs on Linux, and like the stock agent it refuses
  an appspec written for the other platform ("unsupported operating system").
- Unquoted octal-looking numbers (``mode: 0644``) keep the digits as written. YAML 1.1
  reads them as octal integers (0644 becomes 420), which the stock agent then applies as
  mode 420; the user guide tells people to quote them for that reason.
- Unknown keys (top level, in files, permissions and hook entries) and unknown hook event
  names are refused with their line and a "did you mean" (``bundle_rules.key_problems``,
  the same check ``shipyard push`` and ``shipyard validate`` run): the stock agent ignores
  them, which turned a typo such as ``hook:`` into a deployment that did nothing. The
  3600-second total per event is the server's business, not the parser's.
- A hook whose value is null or an empty list is ignored.
- A ``files`` entry repeated verbatim is an error here; other overlaps (two sources that
  land on the same path) can only be seen against the bundle, so ``install`` reports them.
- A ``source`` that climbs out of the bundle with ``..`` is refused.
"""

from __future__ import annotations

import functools
import math
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipyard.agent.bundle_rules import first_fatal, key_problems
from shipyard.agent.launch import RUNAS_NAME
from shipyard.agent.permissions import Permission, parse_permission

SUPPORTED_VERSION = 0.0
SUPPORTED_OS = "linux"
KNOWN_OSES = ("linux", "windows")
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")
DEFAULT_TIMEOUT = 3600


class AppSpecError(ValueError):
    """The appspec file is malformed or asks for something this agent does not support."""


@dataclass(frozen=True)
class FileMapping:
    source: str  # as written, relative to the bundle root ("/" means the whole bundle)
    destination: str  # absolute and normalised


@dataclass(frozen=True)
class HookScript:
    location: str  # relative to the bundle root
    timeout: int = DEFAULT_TIMEOUT
    runas: str | None = None
    sudo: bool = False


@dataclass(frozen=True)
class AppSpec:
    version: float
    os: str
    files: list[FileMapping] = field(default_factory=list)
    permissions: list[Permission] = field(default_factory=list)
    hooks: dict[str, list[HookScript]] = field(default_factory=dict)
    file_exists_behavior: str | None = None

    def scripts_for(self, event: str) -> list[HookScript]:
        """The scripts to run for a lifecycle event, in appspec order (maybe none)."""
        return list(self.hooks.get(event, ()))


def parse(text: str) -> AppSpec:
    """The appspec, validated. Memoised by its text: the agent reads the same appspec
    for every event of a deployment, and parsing it (twice over, for the line numbers
    of the key checks) costs milliseconds in pure-Python YAML. The result is frozen."""
    return _parse(text)


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> AppSpec:
    document = _load_yaml(text)
    if document is None or document is False:
        raise AppSpecError("The appspec file is empty: it must define at least version and os")
    if not isinstance(document, dict):
        raise AppSpecError(
            "The appspec file must be a YAML mapping with keys such as version, os, files, hooks"
        )
    # Typos first: "has no destination" says less than "destinaton: did you mean ...".
    problem = first_fatal(key_problems(text))
    if problem is not None:
        raise AppSpecError(f"line {problem.line}: {problem.message}")
    return AppSpec(
        version=_parse_version(document.get("version")),
        os=_parse_os(document.get("os")),
        file_exists_behavior=_parse_file_exists_behavior(document.get("file_exists_behavior")),
        hooks=_parse_hooks(document.get("hooks")),
        files=_parse_files(document.get("files")),
        permissions=_parse_permissions(document.get("permissions")),
    )


# ------------------------------------------------------------------------------ YAML

# YAML 1.1 octal integers: 0644, 0_755. Kept as strings (see the module docstring).
_OCTAL_LOOKING = re.compile(r"[-+]?0[0-7_]+")


class _AppSpecLoader(yaml.SafeLoader):
    """SafeLoader that keeps octal-looking integers as the digits written."""


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    written = loader.construct_scalar(node)
    if isinstance(written, str) and _OCTAL_LOOKING.fullmatch(written):
        return written
    return loader.construct_yaml_int(node)


_AppSpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_AppSpecLoader)
    except yaml.MarkedYAMLError as exc:
        where = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark else ""
        raise AppSpecError(f"The appspec file is not valid YAML: {exc.problem}{where}") from exc
    except yaml.YAMLError as exc:
        raise AppSpecError(f"The appspec file is not valid YAML: {exc}") from exc


# ----------------------------------------------------------------------- top level keys


def _parse_version(value: object) -> float:
    if value is None:
        raise AppSpecError("The appspec has no version: it must say version: 0.0")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if (is_number and value == SUPPORTED_VERSION) or value == "0.0":
        return SUPPORTED_VERSION
    raise AppSpecError(f"The appspec version {value!r} is not supported: it must be 0.0")


def _parse_os(value: object) -> str:
    if value is None:
        raise AppSpecError("The appspec has no os: it must say os: linux")
    if value == SUPPORTED_OS:
        return SUPPORTED_OS
    if value in KNOWN_OSES:
        raise AppSpecError(
            f"The appspec specifies an unsupported operating system ({value}): "
            f"this agent runs on {SUPPORTED_OS}"
        )
    raise AppSpecError(
        f"The appspec specifies an unsupported operating system ({value}): use os: linux"
    )


def _parse_file_exists_behavior(value: object) -> str | None:
    if value is None:
        return None
    if value not in FILE_EXISTS_BEHAVIORS:
        raise AppSpecError(
            f"The appspec file_exists_behavior {value!r} is invalid: "
            f"use one of {', '.join(FILE_EXISTS_BEHAVIORS)}"
        )
    return str(value)


def _parse_files(value: object) -> list[FileMapping]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AppSpecError("The appspec files section must be a list of source/destination pairs")
    files: list[FileMapping] = []
    for number, entry in enumerate(value, start=1):
        mapping = _parse_file_mapping(number, entry)
        if mapping in files:
            first = files.index(mapping) + 1
            raise AppSpecError(
                f"The appspec files entry {number} repeats entry {first} "
                f"({mapping.source} to {mapping.destination})"
            )
        files.append(mapping)
    return files


def _parse_file_mapping(number: int, entry: object) -> FileMapping:
    where = f"The appspec files entry {number}"
    if not isinstance(entry, dict):
        raise AppSpecError(f"{where} must be a mapping with a source and a destination")
    source, destination = entry.get("source"), entry.get("destination")
    if source is None:
        raise AppSpecError(f"{where} has no source")
    if not isinstance(source, str):
        raise AppSpecError(f"{where}: source {source!r} must be a path string")
    if destination is None:
        raise AppSpecError(f"{where} (source {source}) has no destination")
    if not isinstance(destination, str) or not destination.startswith("/"):
        raise AppSpecError(
            f"{where}: destination {destination!r} must be an absolute path such as /opt/app"
        )
    inside = posixpath.normpath(source.lstrip("/") or ".")
    if inside == ".." or inside.startswith("../"):
        raise AppSpecError(f"{where}: source {source} points outside the bundle")
    return FileMapping(source=source, destination=posixpath.normpath(destination))


def _parse_hooks(value: object) -> dict[str, list[HookScript]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AppSpecError("The appspec hooks section must map event names to lists of scripts")
    hooks: dict[str, list[HookScript]] = {}
    for event, scripts in value.items():
        if scripts is None or scripts == []:
            continue  # an empty hook is ignored, as by the stock agent
        if not isinstance(scripts, list):
            raise AppSpecError(f"The appspec hook {event} must be a list of scripts")
        hooks[str(event)] = [
            _parse_script(f"The appspec hook {event} script {number}", script)
            for number, script in enumerate(scripts, start=1)
        ]
    return hooks


def _parse_script(where: str, script: object) -> HookScript:
    if not isinstance(script, dict):
        raise AppSpecError(f"{where} must be a mapping with a location")
    location = script.get("location")
    if location is None or isinstance(location, dict | list) or not str(location).strip():
        raise AppSpecError(f"{where} has no location")
    if str(location).strip().startswith("/") or ".." in Path(str(location).strip()).parts:
        # Scripts run from the bundle; a location must not reach outside it.
        raise AppSpecError(f"{where}: location {location!r} must stay inside the bundle")
    runas = script.get("runas")
    if isinstance(runas, dict | list | bool) or (
        runas is not None and str(runas).strip() and not RUNAS_NAME.fullmatch(str(runas).strip())
    ):
        raise AppSpecError(f"{where}: runas {runas!r} must be a user name")
    sudo = script.get("sudo")
    if sudo is not None and not isinstance(sudo, bool):
        raise AppSpecError(f"{where}: sudo {sudo!r} must be true or false")
    return HookScript(
        location=str(location).strip(),
        timeout=_parse_timeout(where, script.get("timeout")),
        runas=None if runas is None or not str(runas).strip() else str(runas).strip(),
        sudo=bool(sudo),
    )


def _parse_timeout(where: str, value: object) -> int:
    if value is None:
        return DEFAULT_TIMEOUT
    seconds: int
    if isinstance(value, bool):
        raise AppSpecError(f"{where}: timeout {value!r} is not a number of seconds")
    if isinstance(value, int | float) and math.isfinite(value):
        seconds = int(value)  # fractions are truncated, as the agent's to_i does
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        seconds = int(value.strip())
    else:
        raise AppSpecError(f"{where}: timeout {value!r} is not a number of seconds")
    if seconds <= 0:
        raise AppSpecError(f"{where}: timeout {value!r} must be greater than 0 seconds")
    return seconds


def _parse_permissions(value: object) -> list[Permission]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AppSpecError("The appspec permissions section must be a list of entries")
    permissions: list[Permission] = []
    for number, entry in enumerate(value, start=1):
        try:
            permissions.append(parse_permission(entry))
        except ValueError as exc:
            obj = entry.get("object") if isinstance(entry, dict) else None
            named = f" (object {obj})" if obj is not None else ""
            raise AppSpecError(f"The appspec permissions entry {number}{named}: {exc}") from exc
    return permissions
