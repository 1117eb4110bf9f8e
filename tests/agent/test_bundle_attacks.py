"""Issue 10's attacks on unpacking, performed for real: each bundle is built, unpacked
with the agent's code in a temporary directory, and shown to do no harm."""

from __future__ import annotations

import io
import itertools
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.agent.bundle import BundleError, UnpackLimits, unpack
from tests.agent.archives import (
    LONG_NAME,
    Member,
    as_zip,
    dir_member,
    file_member,
    link_chain_escape,
    link_member,
    path_max_escape,
    write_tar,
    write_zip,
)

BUNDLE_TYPES = ["tar", "tgz", "zip"]
MiB = 1024 * 1024


def build(path: Path, kind: str, members: list[Member]) -> Path:
    if kind == "zip":
        return as_zip(path, members)
    return write_tar(path, members, "w:gz" if kind == "tgz" else "w")


class Target:
    """A deployment directory to unpack into, beside a victim directory outside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.victim = root / "victim"
        self.victim.mkdir()
        (self.victim / "keep.txt").write_text("precious")
        self.deployment = root / "deployment"
        self.deployment.mkdir()
        self.archive = self.deployment / "deployment-archive"

    def victim_untouched(self) -> bool:
        return sorted(os.listdir(self.victim)) == ["keep.txt"]


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return Target(tmp_path)


# --- finding 1: writing outside the bundle --------------------------------------------


@pytest.mark.parametrize("kind", BUNDLE_TYPES)
def test_path_max_symlink_maze_writes_nothing_outside(target: Target, kind: str) -> None:
    bundle = build(target.root / "bundle", kind, path_max_escape(target.victim))
    with pytest.raises(BundleError, match=r"unsafe bundle member .*through a symlink"):
        unpack(bundle, kind, target.archive)
    assert target.victim_untouched()
    assert list(target.deployment.iterdir()) == []


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_link_chains_are_refused_in_every_member_order(target: Target, kind: str) -> None:
    """x -> y/.., x2 -> y2/.., y2 -> x, y -> . (x2 is the bundle's grandparent), in all
    24 orders: the verdict never depends on which link was written first."""
    for number, order in enumerate(itertools.permutations(link_chain_escape())):
        bundle = build(target.root / f"chain-{number}", kind, [file_member("a.txt"), *order])
        with pytest.raises(BundleError, match="symlink pointing outside the archive"):
            unpack(bundle, kind, target.archive)
        assert list(target.deployment.iterdir()) == []


@pytest.mark.parametrize(
    "members",
    [
        [link_member("a", "sub"), dir_member("sub"), file_member("a/f")],
        [dir_member("sub"), file_member("a/f"), link_member("a", "sub")],
    ],
    ids=["link first", "file first"],
)
def test_nothing_is_written_through_an_inner_link_whatever_the_order(
    target: Target, members: list[Member]
) -> None:
    bundle = write_tar(target.root / "b.tar", members)
    with pytest.raises(BundleError, match="unsafe bundle member 'a"):
        unpack(bundle, "tar", target.archive)
    assert list(target.deployment.iterdir()) == []


def test_links_that_stay_inside_are_kept_loops_included(target: Target) -> None:
    """Checking links is no excuse to refuse ordinary ones: relative links up and down
    the tree, a link to a link, a dangling one and a loop (the kernel refuses to follow
    a loop, so it leads nowhere) all unpack."""
    members = [
        file_member("releases/v2/start.sh", b"#!/bin/sh\n", 0o755),
        link_member("releases/current", "v2"),
        link_member("scripts", "releases/current"),
        link_member("releases/v2/appspec.yml", "../../appspec.yml"),
        file_member("appspec.yml", b"version: 0.0\n"),
        link_member("later", "not/there/yet"),
        link_member("loop", "loop"),
    ]
    unpack(write_tar(target.root / "b.tar", members), "tar", target.archive)
    assert (target.archive / "scripts/start.sh").read_bytes() == b"#!/bin/sh\n"
    assert (target.archive / "scripts/appspec.yml").read_bytes() == b"version: 0.0\n"
    assert os.readlink(target.archive / "later") == "not/there/yet"
    assert os.readlink(target.archive / "loop") == "loop"


def test_a_name_longer_than_the_cap_is_refused(target: Target) -> None:
    name = "/".join(["d"] * 9000)  # 17,999 characters of nested one-letter directories
    with pytest.raises(BundleError, match="name longer than 16384 characters"):
        unpack(write_tar(target.root / "b.tar", [file_member(name)]), "tar", target.archive)


def test_hard_link_through_a_symlink_is_refused(target: Target) -> None:
    members = [
        link_member("up", "."),
        link_member("passwd", "up/../../victim/keep.txt", tarfile.LNKTYPE),
    ]
    with pytest.raises(BundleError, match="'passwd': hard link pointing outside"):
        unpack(write_tar(target.root / "b.tar", members), "tar", target.archive)
    assert (target.victim / "keep.txt").stat().st_nlink == 1


def test_a_tree_deeper_than_path_max_unpacks_inside(target: Target) -> None:
    """Long paths are no reason to refuse (nor to stop checking): every member is
    created relative to its directory's descriptor."""
    names = [letter * LONG_NAME for letter in "abcdefghijklmnopq"]
    deepest = "/".join(names)
    members = [dir_member("/".join(names[: n + 1])) for n in range(len(names))]
    bundle = write_tar(target.root / "b.tar", [*members, file_member(f"{deepest}/f", b"deep")])
    unpack(bundle, "tar", target.archive)
    fd = os.open(target.archive, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        assert os.stat("f", dir_fd=fd).st_size == 4
    finally:
        os.close(fd)
    assert len(str(target.archive)) + len(deepest) > 4096


# --- finding 6: modes and owners from the archive -----------------------------------


def test_modes_lose_group_and_other_write_and_special_bits_owners_are_the_agents(
    target: Target,
) -> None:
    def owned(member: Member, uid: int) -> Member:
        member[0].uid = member[0].gid = uid
        member[0].uname = member[0].gname = "intruder"
        return member

    members = [
        owned(file_member("hooks/start.sh", b"#!/bin/sh\n", 0o777), 1234),
        owned(file_member("bin/tool", b"\x7fELF", 0o4755), 1234),
        file_member("share/group.txt", b"g", 0o2664),
        owned(dir_member("hooks", 0o777), 1234),
        dir_member("tmp", 0o1777),
    ]
    unpack(write_tar(target.root / "b.tar", members), "tar", target.archive)
    modes = {
        name: stat.S_IMODE((target.archive / name).lstat().st_mode)
        for name in ("hooks/start.sh", "bin/tool", "share/group.txt", "hooks", "tmp", ".")
    }
    assert modes == {
        "hooks/start.sh": 0o755,
        "bin/tool": 0o755,
        "share/group.txt": 0o644,
        "hooks": 0o755,
        "tmp": 0o755,
        ".": 0o711,  # others may pass through (a runas script's directory), never list
    }
    for path in target.archive.rglob("*"):
        assert (path.lstat().st_uid, path.lstat().st_gid) == (os.getuid(), os.getgid())


def test_zip_modes_lose_special_bits(target: Target) -> None:
    bundle = write_zip(
        target.root / "b.zip",
        [
            ("run.sh", b"#!/bin/sh\n", stat.S_IFREG | 0o6777),
            ("data/", b"", stat.S_IFDIR | 0o1777),
        ],
    )
    unpack(bundle, "zip", target.archive)
    assert stat.S_IMODE((target.archive / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((target.archive / "data").stat().st_mode) == 0o755


# --- finding 8: bombs ---------------------------------------------------------------


def zeros_zip(path: Path, members: int, size: int) -> Path:
    """Highly compressible members: a few KiB of zip for ``members * size`` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(members):
            with archive.open(f"zeros-{number}.bin", "w") as out:
                for _ in range(size // MiB):
                    out.write(bytes(MiB))
    return path


def zeros_tgz(path: Path, members: int, size: int) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for number in range(members):
            info = tarfile.TarInfo(f"zeros-{number}.bin")
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    return path


@pytest.mark.parametrize(("kind", "make"), [("zip", zeros_zip), ("tgz", zeros_tgz)])
def test_an_expansion_bomb_stops_at_the_byte_cap(
    target: Target, kind: str, make: Callable[[Path, int, int], Path]
) -> None:
    bundle = make(target.root / "bomb", 4, 4 * MiB)  # 16 MiB from a few KiB
    assert bundle.stat().st_size < MiB
    limits = UnpackLimits(max_bytes=10 * MiB, max_members=100)
    with pytest.raises(BundleError, match=r"more than 10485760 bytes .*max_unpacked_bytes"):
        unpack(bundle, kind, target.archive, limits)
    assert list(target.deployment.iterdir()) == []


@pytest.mark.parametrize("kind", BUNDLE_TYPES)
def test_too_many_members_are_refused(target: Target, kind: str) -> None:
    members = [file_member(f"f{number}.txt") for number in range(30)]
    bundle = build(target.root / "many", kind, members)
    limits = UnpackLimits(max_bytes=MiB, max_members=20)
    with pytest.raises(BundleError, match=r"more than 20 members .*max_bundle_members"):
        unpack(bundle, kind, target.archive, limits)
    assert list(target.deployment.iterdir()) == []
    unpack(bundle, kind, target.archive, UnpackLimits(max_bytes=MiB, max_members=30))
    assert len(list(target.archive.iterdir())) == 30
