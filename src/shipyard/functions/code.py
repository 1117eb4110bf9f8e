"""Deployment packages: zips kept under the data directory, unpacked for workers.

A package is stored once per function and content as ``DATA_DIR/functions/<name>/<hex
sha256>.zip`` (directories 0700, files 0600: only the server reads them). Workers get an
unpacked copy outside the data directory, readable by the worker user but owned by the
server's, so a function cannot change its own code (as ``/var/task`` on Lambda).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shipyard.agent.extract import BundleError, UnpackLimits, unzip
from shipyard.errors import ApiError
from shipyard.functions.names import invalid

# Lambda's own limits: 50 MB zipped when uploaded directly, 250 MB unzipped.
MAX_ZIP_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
MAX_MEMBERS = 20_000


@dataclass(frozen=True)
class Package:
    sha256: str  # Lambda's CodeSha256: base64 of the raw digest
    size: int

    @property
    def hex(self) -> str:
        return base64.b64decode(self.sha256).hex()


def decode_zip_member(value: object) -> bytes:
    """The ``ZipFile`` member of a request (base64 text in the JSON body)."""
    if not isinstance(value, str):
        raise invalid("Code.ZipFile must be base64-encoded zip bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Code.ZipFile is not valid base64") from None


def too_large(size: int) -> ApiError:
    message = f"Zipped size must be smaller than {MAX_ZIP_BYTES} bytes (got {size})"
    return ApiError("RequestTooLargeException", message, 413)


UNREADABLE = "Could not unzip uploaded file. Please check your file, then try to upload again."


def check_zip(path: Path) -> None:
    """A readable zip whose member names stay inside it (links are checked at unpack)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise invalid(UNREADABLE) from None
    for name in names:
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            raise invalid(f"{UNREADABLE} Member {name[:160]!r} would land outside the package.")


class CodeStore:
    """Packages of every function under ``root`` (``DATA_DIR/functions``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, function: str, package: Package) -> Path:
        return self.root / function / f"{package.hex}.zip"

    def save_bytes(self, function: str, data: bytes) -> Package:
        if len(data) > MAX_ZIP_BYTES:
            raise too_large(len(data))
        with self._scratch(function) as scratch:
            scratch.write_bytes(data)
            return self._keep(function, scratch)

    def save_file(self, function: str, source: Path) -> Package:
        if source.stat().st_size > MAX_ZIP_BYTES:
            raise too_large(source.stat().st_size)
        with self._scratch(function) as scratch:
            shutil.copyfile(source, scratch)
            return self._keep(function, scratch)

    def remove(self, function: str, package: Package | None = None) -> None:
        if package is None:
            shutil.rmtree(self.root / function, ignore_errors=True)
        else:
            self.path(function, package).unlink(missing_ok=True)

    def _keep(self, function: str, scratch: Path) -> Package:
        check_zip(scratch)
        digest = hashlib.sha256(scratch.read_bytes()).digest()
        package = Package(base64.b64encode(digest).decode(), scratch.stat().st_size)
        os.replace(scratch, self.path(function, package))
        return package

    def _scratch(self, function: str) -> _Scratch:
        directory = self.root / function
        for path in (self.root, directory):
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".upload-")
        os.close(fd)  # mkstemp creates it 0600
        return _Scratch(Path(name))


class _Scratch:
    """A temporary file removed on exit unless it was moved into place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *_exc: object) -> None:
        self.path.unlink(missing_ok=True)


def unpack(package_path: Path, target: Path) -> None:
    """Unpack a package to ``target`` (created here), readable by every user.

    The agent's extractor refuses members that would land outside; modes keep only the
    owner's execute bit, spread to all (a ``bootstrap`` stays executable).
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for directory in (parent.parent, parent):  # passable, not listable, by workers
        directory.chmod(0o711)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=".unpack-"))
    try:
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        try:
            unzip(str(package_path), fd, UnpackLimits(MAX_UNZIPPED_BYTES, MAX_MEMBERS))
        finally:
            os.close(fd)
        _open_to_all(staging)
        os.replace(staging, target)
    except BundleError as exc:
        message = f"Could not unpack the package: {exc}"
        raise ApiError("InvalidZipFileException", message, 502) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _open_to_all(root: Path) -> None:
    root.chmod(0o755)
    for directory, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(directory, name), 0o755, follow_symlinks=False)
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            executable = os.stat(path).st_mode & 0o100
            os.chmod(path, 0o755 if executable else 0o644)
