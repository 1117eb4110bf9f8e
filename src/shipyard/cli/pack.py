"""Packing a source directory into a CodeDeploy zip bundle, as ``shipyard push`` does.

The zip is reproducible (sorted entries, fixed timestamps), so pushing the same tree
twice gives the same bytes and the same content-addressed key. File modes are kept:
hook scripts must stay executable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.agent import appspec
from shipyard.cli.client import CliError

APPSPEC_NAME = "appspec.yml"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time zip can store
MSDOS_DIRECTORY = 0x10
BUNDLE_SUFFIXES = ((".tar.gz", "tgz"), (".tgz", "tgz"), (".tar", "tar"), (".zip", "zip"))


def bundle_type_for(key: str) -> str:
    """Guess a bundle type from an object key's suffix; zip when there is no telling."""
    lowered = key.lower()
    return next((kind for suffix, kind in BUNDLE_SUFFIXES if lowered.endswith(suffix)), "zip")


def check_source(source: Path) -> None:
    """Refuse what the agent would refuse later: no directory, a missing or bad appspec.yml.

    The appspec is checked with the agent's own parser, so a push fails where a deploy
    would have failed on every host.
    """
    if not source.is_dir():
        raise CliError(f"push: {source} is not a directory", 2)
    appspec_path = source / APPSPEC_NAME
    if not appspec_path.is_file():
        raise CliError(f"push: {source} has no {APPSPEC_NAME} at its root", 2)
    try:
        appspec.parse(appspec_path.read_text())
    except (appspec.AppSpecError, OSError, UnicodeDecodeError) as exc:
        first_line = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise CliError(f"push: {appspec_path}: {first_line}", 2) from None


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


@contextmanager
def zipped(source: Path) -> Iterator[tuple[Path, str]]:
    """Yield a temporary zip of ``source`` and its SHA-256 hex digest."""
    with tempfile.TemporaryDirectory(prefix="shipyard-push-") as scratch:
        archive = Path(scratch) / "bundle.zip"
        try:
            write_zip(source, archive)
        except OSError as exc:
            raise CliError(f"push: cannot pack {source}: {exc}") from None
        digest = hashlib.sha256()
        with archive.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
        yield archive, digest.hexdigest()
