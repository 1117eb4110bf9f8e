"""Finding and reading the appspec of an unpacked revision, never through a link out of it.

Every hook event reads the appspec again (the scripts to run come from it), so the
common case costs four system calls: the file opened without following a link in its
last component, checked to be a regular file and read from that same descriptor.
Anything else (a name with a directory in it, a symlink, a missing file or archive, any
other error opening it) goes the general way: the path resolved by hand inside the
bundle (:func:`shipyard.agent.tree.stays_inside`), then read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.agent import tree

if TYPE_CHECKING:
    from shipyard.agent.appspec import AppSpec

FALLBACK_NAMES = ("appspec.yaml", "appspec.yml")
# O_NONBLOCK: opening a FIFO named like the appspec must not block (it is then skipped,
# as any file that is not a regular one); reading a regular file ignores the flag.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_CHUNK = 64 * 1024


class AppSpecFileError(ValueError):
    """No usable appspec: missing, unreadable or invalid (the message says which)."""


class _GeneralWay(Exception):
    """The quick read cannot decide this name: take the general way."""


def load(archive: Path, filename: str) -> AppSpec:
    """The parsed appspec of the revision unpacked at ``archive``: ``filename``, else
    ``appspec.yaml``, else ``appspec.yml``, at the root of the revision."""
    from shipyard.agent import appspec

    names = (filename, *FALLBACK_NAMES)
    for name in names:
        text = _read(archive, name)
        if text is None:
            continue
        try:
            return appspec.parse(text)
        except appspec.AppSpecError as exc:
            raise AppSpecFileError(f"{name}: {exc}") from None
    raise AppSpecFileError(
        f"no AppSpec file in the revision: looked for {filename}, "
        f"{' and '.join(FALLBACK_NAMES)} at the root of {archive}"
    )


def _read(archive: Path, name: str) -> str | None:
    """The text of ``name`` in ``archive``; None when it is not a regular file in it."""
    try:
        data = _read_quickly(archive, name)
    except _GeneralWay:
        data = _read_generally(archive, name)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AppSpecFileError(f"cannot read {name}: {exc}") from None
    # What reading in text mode gives: universal newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _read_quickly(archive: Path, name: str) -> bytes | None:
    # One open of the full path: O_NOFOLLOW refuses a link in the last component (the
    # only one the bundle controls, as the name has no "/"); the directories above are
    # the agent's own, followed as the general way follows them.
    if "/" in name:
        raise _GeneralWay
    try:
        fd = os.open(f"{archive}{os.sep}{name}", _FILE_FLAGS)
    except OSError:  # missing (the file, or the archive: the general way says which), a link
        raise _GeneralWay from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return _read_all(fd, name)
    finally:
        os.close(fd)


def _read_generally(archive: Path, name: str) -> bytes | None:
    if not archive.is_dir():
        raise AppSpecFileError(
            f"the revision is not on this host ({archive} is missing); "
            "DownloadBundle must succeed first"
        )
    candidate = archive / name
    # The agent reads it as root: never through a link out of the bundle.
    if not (tree.stays_inside(archive, name) and candidate.is_file()):
        return None
    try:
        return candidate.read_bytes()
    except OSError as exc:
        raise AppSpecFileError(f"cannot read {name}: {exc}") from None


def _read_all(fd: int, name: str) -> bytes:
    parts = []
    try:
        while chunk := os.read(fd, _READ_CHUNK):
            parts.append(chunk)
    except OSError as exc:
        raise AppSpecFileError(f"cannot read {name}: {exc}") from None
    return b"".join(parts)


__all__ = ["FALLBACK_NAMES", "AppSpecFileError", "load"]
