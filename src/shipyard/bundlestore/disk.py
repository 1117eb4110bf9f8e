"""Revision bundles on disk: the storage behind the built-in S3-compatible store.

Layout under ``<data_dir>/bundles/``::

    .tmp/                              uploads being received (same filesystem: rename is atomic)
    <bucket>/bucket.json               {"created": epoch seconds}
    <bucket>/.lock                     flock'ed while metadata of the bucket changes
    <bucket>/objects/<sha256(key)>/    one directory per key, whatever characters the key has
        meta.json                      {"key", "versions": [newest first: id, etag, size, ...]}
        <version id>.data              the bytes of one version, never modified once written
    <bucket>/uploads/<upload id>/      a multipart upload in progress (see uploads.py)

Every object is written to ``.tmp`` first and renamed into place only once it is complete
and verified, so a failed or rejected upload never replaces a good object. Versioning is
always on: each write adds a version; reads take the newest unless a version is named.
Deleting without a version removes the key with all its versions (so buckets can be
emptied with ordinary tools); deleting a version removes only that one.

Errors are ``S3Error`` with S3's error codes, because this store exists to answer S3.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import ShipyardError

MAX_KEY_BYTES = 1024
RESERVED_BUCKETS = frozenset({"console", "metrics", "healthz"})  # paths the server keeps

_BUCKET_FILE = "bucket.json"
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_TOKEN = re.compile(r"^[0-9a-f]{32}$")  # version ids and upload ids: secrets.token_hex(16)


class S3Error(ShipyardError):
    """An error answered as S3 XML: ``code`` is S3's error code, ``fields`` extra elements."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", "The specified bucket does not exist", 404, BucketName=bucket)


def no_such_key(key: str) -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404, Key=key)


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid bucket name (S3's rules), or None if it is."""
    if name in RESERVED_BUCKETS:
        return f"{name!r} is reserved by the Shipyard server"
    if not _BUCKET_NAME.match(name):
        return "bucket names are 3-63 lowercase letters, digits, dots and hyphens"
    if ".." in name or ".-" in name or "-." in name:
        return "bucket names may not have adjacent dots or a dot next to a hyphen"
    if _IP_ADDRESS.match(name):
        return "bucket names may not look like IP addresses"
    if name.startswith("xn--") or name.endswith("-s3alias"):
        return "bucket names may not start with 'xn--' or end with '-s3alias'"
    return None


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    etag: str  # without quotes: md5 hex, or md5-of-md5s "-N" for multipart uploads
    size: int
    last_modified: float
    headers: dict[str, str]  # content-type and friends, x-amz-meta-*
    path: Path  # the data file

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.version_id,
            "etag": self.etag,
            "size": self.size,
            "modified": self.last_modified,
            "headers": self.headers,
        }


@dataclass
class IncomingFile:
    """Bytes being received into ``.tmp``; rejects more than ``limit`` bytes."""

    path: Path
    limit: int
    size: int = 0
    _md5: Any = field(default_factory=hashlib.md5)
    _file: Any = None

    def __post_init__(self) -> None:
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in finish/discard

    def write(self, data: bytes) -> None:
        self._grow(len(data))
        self._md5.update(data)
        self._file.write(data)

    def append_file(self, path: Path) -> None:
        """Copy a whole file in, without hashing (multipart ETags come from the parts)."""
        self._grow(path.stat().st_size)
        with open(path, "rb") as source:
            shutil.copyfileobj(source, self._file, 1024 * 1024)

    def _grow(self, added: int) -> None:
        self.size += added
        if self.size > self.limit:
            raise entity_too_large(self.size, self.limit)

    @property
    def etag(self) -> str:
        return str(self._md5.hexdigest())

    def finish(self) -> None:
        """Flush to stable storage before the file is renamed into place."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def entity_too_large(size: int, limit: int) -> S3Error:
    return S3Error(
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size",
        400,
        ProposedSize=str(size),
        MaxSizeAllowed=str(limit),
    )


class BundleStore:
    """Buckets, versioned objects and multipart uploads under ``root``."""

    def __init__(self, root: Path, clock: Callable[[], float]) -> None:
        self.root = root
        self.clock = clock
        self._tmp = root / ".tmp"

    # -- buckets ---------------------------------------------------------------------------

    def list_buckets(self) -> list[tuple[str, float]]:
        """``(name, created)`` of every bucket, sorted by name."""
        found = []
        for path in sorted(self.root.glob(f"*/{_BUCKET_FILE}")):
            found.append((path.parent.name, float(read_json(path)["created"])))
        return found

    def create_bucket(self, bucket: str) -> None:
        problem = bucket_name_problem(bucket)
        if problem:
            raise S3Error(
                "InvalidBucketName",
                f"The specified bucket is not valid: {problem}",
                400,
                BucketName=bucket,
            )
        directory = self.root / bucket
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        marker = directory / _BUCKET_FILE
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise S3Error(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already own it",
                409,
                BucketName=bucket,
            ) from None
        with os.fdopen(fd, "w") as out:
            json.dump({"created": self.clock()}, out)

    def require_bucket(self, bucket: str) -> None:
        if bucket_name_problem(bucket) or not (self.root / bucket / _BUCKET_FILE).is_file():
            raise no_such_bucket(bucket)

    def delete_bucket(self, bucket: str) -> None:
        """Remove an empty bucket; multipart uploads still open in it are discarded."""
        with self._locked(bucket) as directory:
            objects = directory / "objects"
            if objects.is_dir() and any(objects.iterdir()):
                raise S3Error(
                    "BucketNotEmpty",
                    "The bucket you tried to delete is not empty",
                    409,
                    BucketName=bucket,
                )
            (directory / _BUCKET_FILE).unlink()
            shutil.rmtree(directory, ignore_errors=True)

    # -- objects ---------------------------------------------------------------------------

    def incoming(self, limit: int) -> IncomingFile:
        self._tmp.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="upload-")
        os.close(fd)
        return IncomingFile(Path(name), limit)

    def put(
        self, bucket: str, key: str, incoming: IncomingFile, headers: dict[str, str]
    ) -> ObjectVersion:
        """Make a finished ``incoming`` file the newest version of ``key``."""
        return self.commit(bucket, key, incoming.path, incoming.etag, incoming.size, headers)

    def commit(
        self, bucket: str, key: str, data: Path, etag: str, size: int, headers: dict[str, str]
    ) -> ObjectVersion:
        """Make the finished file ``data`` the newest version of ``key`` (moved, not copied).

        ``data`` is removed if the commit fails, so no half-committed upload lingers.
        """
        check_key(key)
        try:
            with self._locked(bucket) as directory:
                object_dir = _object_dir(directory, key)
                object_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                version_id = secrets.token_hex(16)
                target = object_dir / f"{version_id}.data"
                version = ObjectVersion(key, version_id, etag, size, self.clock(), headers, target)
                os.replace(data, target)
                write_json(
                    object_dir / "meta.json", _meta(key, [version, *self._versions(bucket, key)])
                )
                return version
        finally:
            data.unlink(missing_ok=True)  # only still there if the commit failed

    def get(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        self.require_bucket(bucket)
        versions = self._versions(bucket, key)
        if not versions:
            raise no_such_key(key)
        if version_id is None:
            return versions[0]
        _check_version_id(version_id)
        for version in versions:
            if version.version_id == version_id:
                return version
        raise S3Error(
            "NoSuchVersion",
            "The specified version does not exist.",
            404,
            Key=key,
            VersionId=version_id,
        )

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Delete one version, or the whole key when no version is named. Missing is fine."""
        if version_id is not None:
            _check_version_id(version_id)
        with self._locked(bucket) as directory:
            object_dir = _object_dir(directory, key)
            versions = self._versions(bucket, key)
            keep = [v for v in versions if version_id is not None and v.version_id != version_id]
            if keep:
                write_json(object_dir / "meta.json", _meta(key, keep))
                for gone in versions:
                    if gone not in keep:
                        gone.path.unlink(missing_ok=True)
            else:
                shutil.rmtree(object_dir, ignore_errors=True)

    def list_latest(self, bucket: str) -> list[ObjectVersion]:
        """The newest version of every key, sorted by key."""
        self.require_bucket(bucket)
        found = []
        for meta_path in (self.root / bucket / "objects").glob("*/meta.json"):
            with contextlib.suppress(FileNotFoundError):  # deleted while we listed
                found.append(_versions_from(meta_path)[0])
        return sorted(found, key=lambda v: v.key)

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, bucket: str) -> Iterator[Path]:
        """Hold the bucket's lock (across processes too) while its metadata changes."""
        self.require_bucket(bucket)
        directory = self.root / bucket
        try:
            fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            raise no_such_bucket(bucket) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not (directory / _BUCKET_FILE).is_file():  # deleted while we waited
                raise no_such_bucket(bucket)
            yield directory
        finally:
            os.close(fd)

    def _versions(self, bucket: str, key: str) -> list[ObjectVersion]:
        meta_path = _object_dir(self.root / bucket, key) / "meta.json"
        try:
            return _versions_from(meta_path)
        except FileNotFoundError:
            return []


def check_key(key: str) -> None:
    if not key:
        raise S3Error("InvalidArgument", "Object keys may not be empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long", 400, Key=key[:64] + "...")


def is_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def _check_version_id(version_id: str) -> None:
    if not is_token(version_id):
        raise S3Error("InvalidArgument", "Invalid version id specified", 400, VersionId=version_id)


def _object_dir(bucket_dir: Path, key: str) -> Path:
    # Hashing the key keeps any key (slashes, "..", odd bytes) off the filesystem's path rules.
    return bucket_dir / "objects" / hashlib.sha256(key.encode()).hexdigest()


def _meta(key: str, versions: list[ObjectVersion]) -> dict[str, Any]:
    return {"key": key, "versions": [v.to_json() for v in versions]}


def _versions_from(meta_path: Path) -> list[ObjectVersion]:
    meta = read_json(meta_path)
    return [
        ObjectVersion(
            meta["key"],
            v["id"],
            v["etag"],
            v["size"],
            v["modified"],
            v["headers"],
            meta_path.parent / f"{v['id']}.data",
        )
        for v in meta["versions"]
    ]


def read_json(path: Path) -> dict[str, Any]:
    with open(path) as source:
        data: dict[str, Any] = json.load(source)
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically: readers see the old or the new document, never half."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".meta-")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, separators=(",", ":"))
        out.flush()
        os.fsync(out.fileno())
    os.replace(name, path)
