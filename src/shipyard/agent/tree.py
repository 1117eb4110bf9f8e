"""Paths inside an unpacked bundle, resolved as the kernel would but never leaving it.

The agent runs as root and a bundle's symlinks may point anywhere, so a path into the
bundle is never handed to the kernel to resolve on trust. Directories are opened one
component at a time relative to their parent's descriptor with ``O_NOFOLLOW``, and
symlinks are read and expanded here, with every ``..`` checked against the bundle root.
No full path is ever built, so nothing depends on ``PATH_MAX`` (``os.path.realpath``
silently stops resolving past it while the kernel keeps following links).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40  # the kernel's own limit on symlinks followed while resolving one path


class EscapeError(ValueError):
    """Following a path inside the tree would leave it."""


class NotThroughLinkError(OSError):
    """A directory component is a symlink (or not a directory), so it is not followed."""


def split(path: str) -> list[str]:
    """The components of a relative path, without empty and ``.`` ones."""
    return [part for part in path.split("/") if part not in ("", ".")]


def lexically_inside(location: Sequence[str], target: str) -> bool:
    """Whether the symlink ``target``, read as text from a link in the directory
    ``location`` (components below the root), stays below the root."""
    if target.startswith("/"):
        return False
    depth = len(location)
    for part in split(target):
        depth += -1 if part == ".." else 1
        if depth < 0:
            return False
    return True


def open_directory(root_fd: int, parts: Sequence[str], *, create: bool = False) -> int:
    """Open the directory ``parts`` below ``root_fd`` without following any symlink;
    with ``create``, make missing directories (mode 0755 less the umask) on the way.

    A symlink or a file where a directory is expected raises
    :class:`NotThroughLinkError`; a missing one (without ``create``) FileNotFoundError.
    """
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = _open_child(fd, part)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                child = _open_child(fd, part)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(parent_fd: int, name: str) -> int:
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotThroughLinkError(exc.errno, f"{name} is not a directory") from None
        raise


def resolve(root_fd: int, path: str, *, follow_last: bool = True) -> list[str]:
    """The components below the root that ``path`` (relative to the root) leads to,
    expanding symlinks inside the tree.

    Raises :class:`EscapeError` when resolving would leave the root: an absolute link,
    or a ``..`` above it. What does not exist is taken as written. A symlink loop is
    not an escape (the kernel refuses it with ELOOP): past :data:`MAX_LINKS` links the
    rest is taken as written. Each step costs a constant number of system calls: the
    directories walked so far stay open.
    """
    pending = split(path)[::-1]  # a stack: the next component last
    done: list[str] = []
    opened = [os.dup(root_fd)]  # opened[i] is the directory done[:i], while it exists
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if not done:
                    raise EscapeError(f"{path} leads outside the bundle")
                done.pop()
                if len(opened) > len(done) + 1:
                    os.close(opened.pop())
                continue
            here = opened[-1] if len(opened) == len(done) + 1 else None  # None: gone
            target = None
            if here is not None and links < MAX_LINKS and (pending or follow_last):
                target = _read_link(here, part)
            if target is None:
                done.append(part)
                child = _open_existing(here, part) if here is not None and pending else None
                if child is not None:
                    opened.append(child)
                continue
            links += 1
            if target.startswith("/"):
                raise EscapeError(f"{path} leads outside the bundle (a link to {target})")
            pending.extend(split(target)[::-1])
    finally:
        for fd in opened:
            os.close(fd)
    return done


def stays_inside(directory: Path, path: str, *, follow_last: bool = True) -> bool:
    """Whether ``path`` resolves inside ``directory`` (see :func:`resolve`). Without the
    directory there is nothing to leave: the caller's own access reports what is missing."""
    try:
        root = os.open(directory, DIRECTORY_FLAGS)
    except OSError:
        return True
    try:
        resolve(root, path, follow_last=follow_last)
    except EscapeError:
        return False
    finally:
        os.close(root)
    return True


def _read_link(parent_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=parent_fd)
    except OSError:  # not a link, or not there
        return None


def _open_existing(parent_fd: int, name: str) -> int | None:
    try:
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent_fd)
    except OSError:  # missing, or a file: nothing below it to follow
        return None


def symlinks(root_fd: int) -> Iterator[tuple[list[str], str]]:
    """Every symlink in the tree, as (directory components, name), never following one;
    in name order, so a report names the same link whatever the directory order."""
    pending: list[list[str]] = [[]]
    while pending:
        parts = pending.pop()
        found: list[str] = []
        below: list[list[str]] = []
        fd = open_directory(root_fd, parts)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_symlink():
                        found.append(entry.name)
                    elif entry.is_dir(follow_symlinks=False):
                        below.append([*parts, entry.name])
        finally:
            os.close(fd)
        pending.extend(sorted(below, reverse=True))
        for name in sorted(found):
            yield parts, name


__all__ = [
    "DIRECTORY_FLAGS",
    "EscapeError",
    "NotThroughLinkError",
    "lexically_inside",
    "open_directory",
    "resolve",
    "split",
    "stays_inside",
    "symlinks",
]
