"""Unpacking a bundle (tar, tgz or zip) as root without anything landing outside it.

Every member is created relative to directory descriptors (``openat``-style): each
directory on the way is opened with ``O_NOFOLLOW``, so a symlink in the archive is never
walked through, whatever the member order, and no full path (with its ``PATH_MAX``
limits) is ever handed to the kernel. Names with ``..`` or a leading ``/`` are refused;
a symlink's target is checked as text against the member's own directory; and once
everything is written every link in the tree is resolved inside it again (a chain of
links can climb out where each link alone does not), so the outcome does not depend on
the order of the members.

What comes from the archive is trusted no further than needed: owners are never taken
from it (everything belongs to the agent's user), modes lose group/other write and the
setuid, setgid and sticky bits, and devices and FIFOs are refused. The expanded size and
the member count are capped, counting the bytes as they are written.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Protocol

from shipyard.agent import tree
from shipyard.config import DEFAULT_MAX_BUNDLE_MEMBERS, DEFAULT_MAX_UNPACKED_BYTES

CHUNK = 64 * 1024
KEPT_MODE_BITS = 0o755  # no group/other write, no setuid, setgid or sticky
MAX_LINK_TARGET = 4096
MAX_NAME_SHOWN = 160
MAX_NAME_LENGTH = 16 * 1024  # far past PATH_MAX, yet a bound on the work per member
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class BundleError(Exception):
    """The bundle cannot be fetched or unpacked; the message says why, in one line."""


@dataclass(frozen=True)
class UnpackLimits:
    """Caps on what one bundle may expand to (``AgentConfig`` sets them)."""

    max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_members: int = DEFAULT_MAX_BUNDLE_MEMBERS


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def untar(bundle: str, root_fd: int, limits: UnpackLimits) -> None:
    """Unpack the tar (compressed or not) ``bundle`` below the directory ``root_fd``."""
    writer = _Writer(root_fd, limits)
    try:
        with tarfile.open(bundle, "r:*") as archive:
            for member in archive:
                parts = writer.member(member.name)
                if member.isdir():
                    writer.directory(member.name, parts, member.mode)
                elif member.isreg():
                    source = archive.extractfile(member)
                    assert source is not None  # a regular member always has data
                    with source:
                        writer.file(member.name, parts, source, member.mode, member.mtime)
                elif member.issym():
                    writer.symlink(member.name, parts, member.linkname)
                elif member.islnk():
                    writer.hard_link(member.name, parts, member.linkname)
                else:
                    raise _unsafe(member.name, "device or special file")
        writer.finish()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BundleError(f"bundle is not a readable tar archive: {exc}") from None
    except OSError as exc:
        raise BundleError(f"cannot unpack bundle: {exc}") from None


def unzip(bundle: str, root_fd: int, limits: UnpackLimits) -> None:
    """Unpack the zip ``bundle`` below the directory ``root_fd``."""
    writer = _Writer(root_fd, limits)
    try:
        with zipfile.ZipFile(bundle) as archive:
            members = archive.infolist()
            if len(members) > limits.max_members:
                raise _too_many(limits)
            for info in members:
                name = info.filename
                parts = writer.member(name)
                # Unix zips keep st_mode in the high half of external_attr.
                mode = info.external_attr >> 16 if info.create_system == 3 else 0
                kind = stat.S_IFMT(mode)
                if info.is_dir() or kind == stat.S_IFDIR:
                    writer.directory(name, parts, mode or 0o755)
                elif kind == stat.S_IFLNK:
                    with archive.open(info) as source:
                        target = source.read(MAX_LINK_TARGET + 1)
                    if len(target) > MAX_LINK_TARGET:
                        raise _unsafe(name, "symlink target too long")
                    writer.symlink(name, parts, target.decode("utf-8", "surrogateescape"))
                elif kind in (0, stat.S_IFREG):
                    with archive.open(info) as source:
                        writer.file(name, parts, source, mode or 0o644, None)
                else:
                    raise _unsafe(name, "device or special file")
        writer.finish()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise BundleError(f"bundle is not a readable zip archive: {exc}") from None
    except RuntimeError as exc:  # an unsupported compression method, an encrypted member
        raise BundleError(f"bundle zip archive cannot be read: {exc}") from None
    except OSError as exc:
        raise BundleError(f"cannot unpack bundle: {exc}") from None


@dataclass
class _Writer:
    """Creates members below ``root_fd``; counts members and bytes against the limits."""

    root_fd: int
    limits: UnpackLimits
    members: int = 0
    written: int = 0
    directory_modes: dict[tuple[str, ...], int] = field(default_factory=dict)

    def member(self, name: str) -> list[str]:
        """The components of member ``name``, after counting it and checking the name."""
        self.members += 1
        if self.members > self.limits.max_members:
            raise _too_many(self.limits)
        if name.startswith("/"):
            raise _unsafe(name, "absolute path")
        if len(name) > MAX_NAME_LENGTH:
            raise _unsafe(name, f"name longer than {MAX_NAME_LENGTH} characters")
        parts = tree.split(name)
        if ".." in parts:
            raise _unsafe(name, "path escapes the archive (a '..' component)")
        return parts

    def directory(self, name: str, parts: list[str], mode: int) -> None:
        if parts:  # "./" is the root itself, whose mode the agent decides
            os.close(self._open(name, parts, create=True))
            self.directory_modes[tuple(parts)] = stat.S_IMODE(mode) & KEPT_MODE_BITS

    def file(
        self, name: str, parts: list[str], source: _Readable, mode: int, mtime: float | None
    ) -> None:
        parent = self._parent(name, parts)
        try:
            fd = os.open(parts[-1], CREATE_FLAGS, 0o600, dir_fd=parent)
        finally:
            os.close(parent)
        with open(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                self.written += len(chunk)
                if self.written > self.limits.max_bytes:
                    raise BundleError(
                        f"bundle expands to more than {self.limits.max_bytes} bytes "
                        "(the agent's max_unpacked_bytes limit)"
                    )
                out.write(chunk)
            out.flush()
            os.fchmod(fd, stat.S_IMODE(mode) & KEPT_MODE_BITS)
            if mtime is not None:
                os.utime(fd, (mtime, mtime))

    def symlink(self, name: str, parts: list[str], target: str) -> None:
        if not target or not tree.lexically_inside(parts[:-1], target):
            raise _unsafe(name, f"symlink pointing outside the archive ({target})")
        parent = self._parent(name, parts)
        try:
            os.symlink(target, parts[-1], dir_fd=parent)
        finally:
            os.close(parent)

    def hard_link(self, name: str, parts: list[str], target: str) -> None:
        source = tree.split(target)
        if target.startswith("/") or ".." in source or not source:
            raise _unsafe(name, f"hard link pointing outside the archive ({target})")
        try:
            source_parent = tree.open_directory(self.root_fd, source[:-1])
        except (FileNotFoundError, tree.NotThroughLinkError):
            raise _unsafe(name, f"hard link to {target}, which is not in the archive") from None
        parent = self._parent(name, parts)
        try:
            os.link(
                source[-1],
                parts[-1],
                src_dir_fd=source_parent,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        except FileNotFoundError:
            raise _unsafe(name, f"hard link to {target}, which is not in the archive") from None
        finally:
            os.close(parent)
            os.close(source_parent)

    def finish(self) -> None:
        """Directory modes (deepest first, so none blocks its own contents while the
        archive is written), then every symlink resolved inside the tree once more."""
        for directory, mode in sorted(self.directory_modes.items(), key=lambda item: -len(item[0])):
            fd = tree.open_directory(self.root_fd, directory)
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        for parts, link in list(tree.symlinks(self.root_fd)):
            name = "/".join([*parts, link])
            try:
                tree.resolve(self.root_fd, name)
            except tree.EscapeError:
                raise _unsafe(name, "symlink pointing outside the archive") from None

    def _parent(self, name: str, parts: list[str]) -> int:
        """The directory a non-directory member goes in, emptied of whatever non-directory
        had its name (a later member replaces an earlier one, as tar does)."""
        if not parts:
            raise _unsafe(name, "a file member without a name")
        parent = self._open(name, parts[:-1], create=True)
        try:
            existing = os.lstat(parts[-1], dir_fd=parent)
        except FileNotFoundError:
            return parent
        if stat.S_ISDIR(existing.st_mode):
            os.close(parent)
            raise _unsafe(name, "a directory of the archive is already there")
        os.unlink(parts[-1], dir_fd=parent)  # never write through an earlier member
        return parent

    def _open(self, name: str, parts: list[str], *, create: bool) -> int:
        try:
            return tree.open_directory(self.root_fd, parts, create=create)
        except tree.NotThroughLinkError:
            raise _unsafe(name, "path goes through a symlink or a file") from None


def _too_many(limits: UnpackLimits) -> BundleError:
    return BundleError(
        f"bundle has more than {limits.max_members} members (the agent's max_bundle_members limit)"
    )


def _unsafe(name: str, why: str) -> BundleError:
    if len(name) > MAX_NAME_SHOWN:  # keep the message one readable line
        name = f"{name[: MAX_NAME_SHOWN // 2]}...{name[-MAX_NAME_SHOWN // 2 :]}"
    return BundleError(f"unsafe bundle member {name!r}: {why}")


__all__ = [
    "BundleError",
    "UnpackLimits",
    "untar",
    "unzip",
]
