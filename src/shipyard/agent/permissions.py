"""The ``permissions`` section of an EC2/on-premises appspec: grammar and commands.

Parsing follows the stock agent's rules:

- ``mode``: 1 to 4 octal digits, left-padded with zeros to 3 (``"7"`` is ``007``).
- ``acls``: setfacl-style entries ``[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms``
  where perms is any mix of ``r``, ``w``, ``x``, ``-`` or a single octal digit. The owning
  user, owning group and other are set with ``mode``, so an unnamed user or group entry (and
  any non-default other entry) is rejected; mask and other never take a name.
- ``context``: ``{name, type, range}`` (``type`` required, ``role`` not supported); the range
  is ``s#[-s#][:c#[.c#](,c#[.c#])*]`` with categories up to c1023 and none repeated.
- ``pattern``: ``"**"`` (the default) covers everything below the object; any other glob is
  matched against *immediate children* only, and only ``*`` is a wildcard. ``except`` globs
  are matched the same way and exclude immediate children only.

Everything here is pure: parse functions raise ``ValueError`` with a readable message (the
appspec parser adds where in the file it happened), and the command builders return argv
lists that ``install.py`` runs.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

FILE_TYPES: tuple[str, ...] = ("file", "directory")
MATCH_EVERYTHING = "**"
MAX_CATEGORY = 1023
ACL_SYNTAX = "[d[efault]:][u[ser]|g[roup]|m[ask]|o[ther]]:[name]:perms"

_ACL_KINDS = {
    "u": "user",
    "user": "user",
    "g": "group",
    "group": "group",
    "m": "mask",
    "mask": "mask",
    "o": "other",
    "other": "other",
}
_DEFAULT_MARKERS = ("d", "default")
_OCTAL_DIGITS = "01234567"


@dataclass(frozen=True)
class Mode:
    """A chmod mode as 3 or 4 octal digits (the 4th, leading, is setuid/setgid/sticky)."""

    digits: str

    @property
    def bits(self) -> int:
        return int(self.digits, 8)


@dataclass(frozen=True)
class AclEntry:
    """One ACL entry; ``perms`` is always three characters such as ``"r-x"``."""

    kind: str  # user | group | mask | other
    name: str = ""  # empty for the owning user/group, the mask and other
    perms: str = "---"
    default: bool = False

    @property
    def text(self) -> str:
        prefix = "default:" if self.default else ""
        return f"{prefix}{self.kind}:{self.name}:{self.perms}"


@dataclass(frozen=True)
class SelinuxRange:
    """An MLS/MCS range; ``categories`` is sorted, or None when the range names none."""

    low: int
    high: int
    categories: tuple[int, ...] | None = None

    @property
    def text(self) -> str:
        """The canonical spelling, consecutive categories folded: ``s0-s2:c0.c3,c7``."""
        text = f"s{self.low}" if self.low == self.high else f"s{self.low}-s{self.high}"
        if self.categories is None:
            return text
        runs: list[list[int]] = []
        for category in self.categories:
            if runs and category == runs[-1][-1] + 1:
                runs[-1].append(category)
            else:
                runs.append([category])
        spans = [f"c{run[0]}" if len(run) == 1 else f"c{run[0]}.c{run[-1]}" for run in runs]
        return f"{text}:{','.join(spans)}"


@dataclass(frozen=True)
class SelinuxContext:
    """An SELinux file context to register with ``semanage fcontext``."""

    type: str
    user: str | None = None
    range: SelinuxRange | None = None


@dataclass(frozen=True)
class Permission:
    """One entry of the permissions section (see the module docstring for matching)."""

    object: str  # absolute, normalised path
    pattern: str = MATCH_EVERYTHING
    except_patterns: tuple[str, ...] = ()
    types: tuple[str, ...] = FILE_TYPES
    owner: str | None = None
    group: str | None = None
    mode: Mode | None = None
    acls: tuple[AclEntry, ...] | None = None
    context: SelinuxContext | None = None

    @property
    def has_default_acl(self) -> bool:
        return any(entry.default for entry in self.acls or ())

    def covers(self, path: str) -> bool:
        """Whether ``path`` (absolute, normalised) lies under the object, matches the
        pattern and is not excluded. The object itself is never covered."""
        relative = self._relative(path)
        if relative is None:
            return False
        if self.pattern != MATCH_EVERYTHING and not _simple_glob(relative, self.pattern):
            return False
        return not any(_simple_glob(relative, glob) for glob in self.except_patterns)

    def file_object_problem(self) -> str | None:
        """Why this entry cannot apply to an object that is itself a file, if it cannot."""
        if self.pattern != MATCH_EVERYTHING:
            return f"pattern {self.pattern!r} can only be used when the object is a directory"
        if self.except_patterns:
            return "except can only be used when the object is a directory"
        return None

    def _relative(self, path: str) -> str | None:
        base = self.object if self.object.endswith("/") else self.object + "/"
        inside = path.startswith(base) and path != self.object
        return path[len(base) :] if inside else None


def _simple_glob(name: str, glob: str) -> bool:
    """Match one path component against a glob whose only wildcard is ``*``."""
    if "/" in name:
        return False
    regex = "".join(".*" if char == "*" else re.escape(char) for char in glob)
    return re.fullmatch(regex, name, flags=re.DOTALL) is not None


# ---------------------------------------------------------------------------- parsing


def parse_permission(raw: object) -> Permission:
    """Build a Permission from one YAML entry of the permissions section."""
    if not isinstance(raw, dict):
        raise ValueError("an entry must be a mapping with at least an object")
    if raw.get("object") is None or not str(raw["object"]).strip():
        raise ValueError("the object is missing")
    obj = str(raw["object"]).strip()
    if not obj.startswith("/"):
        raise ValueError(f"object {obj!r} must be an absolute path")
    pattern = raw.get("pattern")
    if pattern is None:
        pattern = MATCH_EVERYTHING
    elif not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern {pattern!r} must be a non-empty glob string")
    return Permission(
        object=posixpath.normpath(obj),
        pattern=pattern,
        except_patterns=_string_list(raw.get("except"), "except"),
        types=_parse_types(raw.get("type")),
        owner=_optional_name(raw.get("owner"), "owner"),
        group=_optional_name(raw.get("group"), "group"),
        mode=None if raw.get("mode") is None else parse_mode(raw["mode"]),
        acls=None if raw.get("acls") is None else _parse_acls(raw["acls"]),
        context=None if raw.get("context") is None else parse_context(raw["context"]),
    )


def _string_list(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _parse_types(value: object) -> tuple[str, ...]:
    if value is None:
        return FILE_TYPES
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("type must be a list of file and/or directory")
    for item in items:
        if item not in FILE_TYPES:
            raise ValueError(f"unsupported permission type {item!r}: use file or directory")
    return tuple(items)


def _optional_name(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} {value!r} must be a {what} name")
    return value.strip()


def parse_mode(value: object) -> Mode:
    """``644``, ``"0644"``, ``"7"`` (read as 007); at most 4 octal digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f'mode {value!r} must be octal digits such as "644"')
    digits = str(value).strip().rjust(3, "0")
    if len(digits) > 4:
        raise ValueError(f"mode {value} is too long: give 1 to 4 octal digits")
    for char in digits:
        if char not in _OCTAL_DIGITS:
            raise ValueError(f"mode {value} contains {char!r}, which is not an octal digit")
    return Mode(digits)


def _parse_acls(value: object) -> tuple[AclEntry, ...]:
    if not isinstance(value, list):
        raise ValueError(f"acls must be a list of entries like {ACL_SYNTAX}")
    return tuple(parse_acl_entry(entry) for entry in value)


def parse_acl_entry(entry: object) -> AclEntry:
    """Parse one setfacl-style entry as the stock agent reads them (parts counted from the
    right: perms, then the name, then the kind, then a default marker)."""
    if not isinstance(entry, str):
        raise ValueError(f"acl entry {entry!r} must be a string like {ACL_SYNTAX}")
    parts = entry.split(":")
    invalid = f"acl entry {entry!r} is not of the form {ACL_SYNTAX}"
    if not 2 <= len(parts) <= 4:
        raise ValueError(invalid)
    *head, qualifier, perms = parts
    default = False
    kind: str | None = None
    if len(head) == 2:
        if head[0] not in _DEFAULT_MARKERS:
            raise ValueError(invalid)
        default = True
    if head:
        tag = head[-1]
        if tag in _DEFAULT_MARKERS and not default:
            default = True
        elif tag in _ACL_KINDS:
            kind = _ACL_KINDS[tag]
        else:
            raise ValueError(invalid)
    name = qualifier
    if qualifier in ("m", "mask", "o", "other"):
        # Without an explicit kind, "m:rwx" is the mask; after one ("u:mask:rw"), a name.
        name = "" if kind is None else _ACL_KINDS[qualifier]
        kind = kind or _ACL_KINDS[qualifier]
    kind = kind or "user"
    if kind in ("mask", "other") and name:
        raise ValueError(f"acl entry {entry!r}: a {kind} entry cannot name a user or group")
    if not default and kind != "mask" and not name:
        raise ValueError(
            f"acl entry {entry!r} sets the owning {kind}'s base permissions: use mode for that"
        )
    return AclEntry(kind=kind, name=name, perms=_parse_acl_perms(entry, perms), default=default)


def _parse_acl_perms(entry: str, perms: str) -> str:
    if len(perms) == 1 and perms in _OCTAL_DIGITS:
        return _rwx(int(perms))
    for char in perms:
        if char not in "rwx-":
            raise ValueError(f"acl entry {entry!r} has an invalid permission character {char!r}")
    return "".join(flag if flag in perms else "-" for flag in "rwx")


def _rwx(digit: int) -> str:
    return "".join(flag if digit & bit else "-" for flag, bit in zip("rwx", (4, 2, 1), strict=True))


def parse_context(value: object) -> SelinuxContext:
    if not isinstance(value, dict):
        raise ValueError("context must be a mapping with a type (and optional name, range)")
    if value.get("role") is not None:
        raise ValueError("context role is not supported: remove it")
    context_type = value.get("type")
    if not isinstance(context_type, str) or not context_type.strip():
        raise ValueError(f"context {value!r} needs a type")
    user = _optional_name(value.get("name"), "context name")
    selinux_range = value.get("range")
    if selinux_range is not None and not isinstance(selinux_range, str):
        raise ValueError(f"context range {selinux_range!r} must be a string like s0:c0.c3")
    return SelinuxContext(
        type=context_type.strip(),
        user=user,
        range=None if selinux_range is None else parse_selinux_range(selinux_range),
    )


def parse_selinux_range(text: str) -> SelinuxRange:
    """``s#[-s#][:c#[.c#](,c#[.c#])*]``."""
    levels, _, categories = text.partition(":")
    if ":" in text and not categories:
        raise ValueError(f"SELinux range {text!r} has nothing after ':'")
    low_text, dash, high_text = levels.partition("-")
    low = _range_number(low_text, "s", text)
    high = _range_number(high_text, "s", text) if dash else low
    if high < low:
        raise ValueError(f"SELinux range {text!r}: high sensitivity is below the low one")
    if not categories:
        return SelinuxRange(low, high)
    numbers: list[int] = []
    for span in categories.split(","):
        first, dot, last = span.partition(".")
        start = _range_number(first, "c", text)
        end = _range_number(last, "c", text) if dot else start
        if end < start:
            raise ValueError(f"SELinux range {text!r}: category span {span!r} runs backwards")
        numbers.extend(range(start, end + 1))
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"SELinux range {text!r} lists a category more than once")
    return SelinuxRange(low, high, tuple(sorted(numbers)))


def _range_number(part: str, letter: str, whole: str) -> int:
    what = "sensitivity" if letter == "s" else "category"
    if len(part) < 2 or part[0] != letter or not part[1:].isascii() or not part[1:].isdigit():
        raise ValueError(f"SELinux range {whole!r}: invalid {what} {part!r}")
    number = int(part[1:])
    if letter == "c" and number > MAX_CATEGORY:
        raise ValueError(f"SELinux range {whole!r}: category {part!r} is above c{MAX_CATEGORY}")
    return number


# --------------------------------------------------------------------------- commands


def full_acl(entries: Iterable[AclEntry], mode_bits: int) -> list[AclEntry]:
    """The complete ACL for ``setfacl --set``: the appspec's entries plus the base entries
    taken from the file's current mode (and default base entries when any default is set),
    with a mask added when named entries need one, as the stock agent builds it."""
    given = list(entries)
    owner, group, other = (_rwx((mode_bits >> shift) & 7) for shift in (6, 3, 0))
    result = [
        *given,
        AclEntry("user", perms=owner),
        AclEntry("group", perms=group),
        AclEntry("other", perms=other),
    ]
    access = [entry for entry in given if not entry.default]
    if any(entry.name for entry in access) and not any(e.kind == "mask" for e in access):
        result.append(AclEntry("mask", perms=group))
    defaults = [entry for entry in given if entry.default]
    if defaults:
        default_group = next((e for e in defaults if e.kind == "group" and not e.name), None)
        if not any(e.kind == "user" and not e.name for e in defaults):
            result.append(AclEntry("user", perms=owner, default=True))
        if default_group is None:
            default_group = AclEntry("group", perms=group, default=True)
            result.append(default_group)
        if not any(e.kind == "other" for e in defaults):
            result.append(AclEntry("other", perms=other, default=True))
        if any(e.name for e in defaults) and not any(e.kind == "mask" for e in defaults):
            result.append(AclEntry("mask", perms=default_group.perms, default=True))
    return result


def setfacl_command(path: str, entries: Iterable[AclEntry], mode_bits: int) -> list[str]:
    acl = ",".join(entry.text for entry in full_acl(entries, mode_bits))
    return ["setfacl", "--set", acl, "--", path]


def semanage_add_command(path: str, context: SelinuxContext) -> list[str]:
    command = ["semanage", "fcontext", "-a"]
    if context.user is not None:
        command += ["-s", context.user]
    command += ["-t", context.type]
    if context.range is not None:
        command += ["-r", context.range.text]
    return [*command, path]


def context_as_json(context: SelinuxContext) -> dict[str, Any]:
    return {
        "user": context.user,
        "role": None,
        "type": context.type,
        "range": None if context.range is None else context.range.text,
    }
