"""Packing a source directory into a CodeDeploy bundle (zip, tar or tgz), as ``push`` does.

The bundle is reproducible (sorted entries, fixed timestamps), so pushing the same tree
twice gives the same bytes and the same content-addressed key. File modes are kept:
hook scripts must stay executable.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.agent import appspec, bundle_rules
from shipyard.agent.bundle_rules import Problem
from shipyard.cli.client import CliError

APPSPEC_NAME = "appspec.yml"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time zip can store
MSDOS_DIRECTORY = 0x10
BUNDLE_SUFFIXES = ((".tar.gz", "tgz"), (".tgz", "tgz"), (".tar", "tar"), (".zip", "zip"))


def bundle_type_for(key: str) -> str:
    """Guess a bundle type from an object key's suffix; zip when there is no telling."""
    lowered = key.lower()
    return next((kind for suffix, kind in BUNDLE_SUFFIXES if lowered.endswith(suffix)), "zip")


def bundle_problems(source: Path) -> list[Problem]:
    """Everything the agent would refuse in a bundle made from ``source``, and warnings.

    The rules are the agent's own (``appspec.parse`` and ``bundle_rules``), so what passes
    here passes on the hosts, and a bundle built another way gets the same messages there.
    """
    appspec_path = source / APPSPEC_NAME
    if not appspec_path.is_file():
        return [Problem(APPSPEC_NAME, None, "missing: the bundle needs one at its root")]
    try:
        text = appspec_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(APPSPEC_NAME, None, f"unreadable: {exc}")]
    problems = bundle_rules.key_problems(text)
    try:
        parsed = appspec.parse(text)
    except appspec.AppSpecError as exc:
        if problems:  # the parser refused the first of these; report them all
            return problems
        return [Problem(APPSPEC_NAME, None, (str(exc).strip().splitlines() or ["invalid"])[0])]
    scripts = [script.location for scripts in parsed.hooks.values() for script in scripts]
    sources = [mapping.source for mapping in parsed.files]
    return problems + bundle_rules.tree_problems(source, sources, scripts)


def has_bundle_suffix(key: str) -> bool:
    return any(key.lower().endswith(suffix) for suffix, _ in BUNDLE_SUFFIXES)


def check_source(source: Path, command: str = "push") -> list[Problem]:
    """Refuse a bundle the agent would refuse, naming the file and line; return warnings."""
    if not source.is_dir():
        raise CliError(f"{command}: {source} is not a directory", 2)
    problems = bundle_problems(source)
    fatal = [p for p in problems if p.fatal]
    if fatal:
        more = f" (and {len(fatal) - 1} more: shipyard validate {source})" if len(fatal) > 1 else ""
        raise CliError(f"{command}: {source / str(fatal[0])}{more}", 2)
    return problems


def _entries(source: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(source):
        dirs.sort()
        here = Path(root)
        if here != source:
            yield here
        for name in sorted(files):
            yield here / name


def write_zip(source: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in _entries(source):
            name = path.relative_to(source).as_posix()
            mode = path.stat().st_mode
            if stat.S_ISDIR(mode):
                info = zipfile.ZipInfo(name + "/", FIXED_ZIP_TIME)
                info.external_attr = (mode & 0xFFFF) << 16 | MSDOS_DIRECTORY
                bundle.writestr(info, b"")
                continue
            # Built by hand, not ZipInfo.from_file: that refuses files older than 1980.
            info = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
            info.external_attr = (mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as data, bundle.open(info, "w", force_zip64=True) as entry:
                shutil.copyfileobj(data, entry)


def write_tar(source: Path, archive: Path, *, compressed: bool) -> None:
    """A reproducible tar (sorted, fixed times, no owner names), gzipped for tgz."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    with archive.open("wb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compressed else raw
        with stream, tarfile.open(fileobj=stream, mode="w", format=tarfile.PAX_FORMAT) as bundle:
            for path in _entries(source):
                name = path.relative_to(source).as_posix()
                bundle.add(path, arcname=name, recursive=False, filter=normalise)


def write_bundle(source: Path, archive: Path, kind: str) -> None:
    if kind == "zip":
        write_zip(source, archive)
    else:
        write_tar(source, archive, compressed=kind == "tgz")


@contextmanager
def packed(source: Path, kind: str = "zip") -> Iterator[tuple[Path, str]]:
    """Yield a temporary bundle of ``source`` (zip, tar or tgz) and its SHA-256 hex digest."""
    with tempfile.TemporaryDirectory(prefix="shipyard-push-") as scratch:
        archive = Path(scratch) / f"bundle.{kind}"
        try:
            write_bundle(source, archive, kind)
        except OSError as exc:
            raise CliError(f"push: cannot pack {source}: {exc}") from None
        digest = hashlib.sha256()
        with archive.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
        yield archive, digest.hexdigest()
