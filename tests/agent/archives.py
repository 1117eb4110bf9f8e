"""Building bundles for the agent tests: ordinary ones, and the attacks of issue 10."""

from __future__ import annotations

import io
import stat
import string
import tarfile
import zipfile
from pathlib import Path

Member = tuple[tarfile.TarInfo, bytes]
LONG_NAME = 247  # a directory name this long, nested 17 deep, passes PATH_MAX


def file_member(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE, mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, mode
    return info, b""


def dir_member(name: str, mode: int = 0o755) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, b""


def write_tar(path: Path, members: list[Member], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def write_zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """Members are (name, data, st_mode); st_mode 0 writes a member without Unix mode."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, st_mode in members:
            info = zipfile.ZipInfo(name)
            if st_mode:
                info.create_system = 3
                info.external_attr = st_mode << 16
            archive.writestr(info, data)
    return path


def as_zip(path: Path, members: list[Member]) -> Path:
    """The same members as a zip with Unix modes (symlinks keep their target as data)."""
    entries: list[tuple[str, bytes, int]] = []
    for info, data in members:
        if info.isdir():
            entries.append((info.name + "/", b"", stat.S_IFDIR | info.mode))
        elif info.issym():
            entries.append((info.name, info.linkname.encode(), stat.S_IFLNK | 0o777))
        else:
            entries.append((info.name, data, stat.S_IFREG | info.mode))
    return write_zip(path, entries)


def build_on_disk(root: Path, members: list[Member]) -> None:
    """Lay the members out with plain path calls, letting the kernel follow every link:
    what a bundle looked like once the old checks had let it through."""
    for info, data in members:
        where = root / info.name
        if info.isdir():
            where.mkdir(parents=True)
        elif info.issym():
            where.symlink_to(info.linkname)
        else:
            where.write_bytes(data)
            where.chmod(info.mode)


def path_max_escape(victim: Path, depth: int = 17) -> list[Member]:
    """The finding's tar: ``depth`` nested 247-character directories, each reached
    through a one-letter symlink, a symlink from the deepest back up to the root, and
    ``escape`` created through that link. ``os.path.realpath`` gives up resolving once
    the path passes PATH_MAX, so it believes ``escape`` sits one level below the deepest
    directory and that ``../`` x (depth + 1) stays inside; the kernel puts ``escape`` at
    the root, where the same target climbs to ``victim``, and ``escape/X`` lands there.
    """
    letters = string.ascii_lowercase[:depth]
    members: list[Member] = []
    for level, letter in enumerate(letters):
        short = "/".join(letters[:level])  # the one-letter path to this level
        long_dir = letter * LONG_NAME
        members.append(dir_member(f"{short}/{long_dir}".lstrip("/")))
        members.append(link_member(f"{short}/{letter}".lstrip("/"), long_dir))
    deepest = "/".join(letters)
    members.append(link_member(f"{deepest}/u", "../" * depth))
    climb = "../" * (depth + 1) + str(victim).lstrip("/")
    members.append(link_member(f"{deepest}/u/escape", climb))
    members.append(file_member(f"{deepest}/u/escape/X", b"written by the bundle\n"))
    return members


def link_chain_escape() -> list[Member]:
    """Links checked before the links they go through exist: ``x -> y/..`` and
    ``x2 -> y2/..`` look harmless while ``y``/``y2`` are missing; ``y2 -> x`` is checked
    while ``x`` still resolves inside; then ``y -> .`` makes ``x`` the bundle's parent and
    ``x2`` its grandparent."""
    return [
        link_member("x", "y/.."),
        link_member("x2", "y2/.."),
        link_member("y2", "x"),
        link_member("y", "."),
    ]


__all__ = [
    "LONG_NAME",
    "Member",
    "as_zip",
    "build_on_disk",
    "dir_member",
    "file_member",
    "link_chain_escape",
    "link_member",
    "path_max_escape",
    "write_tar",
    "write_zip",
]
