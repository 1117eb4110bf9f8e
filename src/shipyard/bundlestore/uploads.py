"""Multipart uploads into the bundle store: parts kept apart until completion joins them.

Layout: ``<bucket>/uploads/<upload id>/`` holds ``upload.json`` (the key and its headers)
and, per part, ``part-00001`` with ``part-00001.json`` (etag, size). Completing joins the
chosen parts, in order, into a new version of the key whose ETag is S3's: the MD5 of the
parts' binary MD5s, then ``-<number of parts>``. Every part but the last must be at least
5 MiB, as in S3.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from shipyard.bundlestore.disk import (
    BundleStore,
    IncomingFile,
    ObjectVersion,
    S3Error,
    check_key,
    entity_too_large,
    is_token,
    read_json,
    write_json,
)

MIN_PART_BYTES = 5 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    last_modified: float


def no_such_upload(upload_id: str) -> S3Error:
    message = "The specified multipart upload does not exist."
    return S3Error("NoSuchUpload", message, 404, UploadId=upload_id)


class MultipartUploads:
    def __init__(self, store: BundleStore) -> None:
        self.store = store

    def create(self, bucket: str, key: str, headers: dict[str, str]) -> str:
        self.store.require_bucket(bucket)
        check_key(key)
        upload_id = secrets.token_hex(16)
        directory = self.store.root / bucket / "uploads" / upload_id
        directory.mkdir(mode=0o700, parents=True)
        write_json(directory / "upload.json", {"key": key, "headers": headers})
        return upload_id

    def key_of(self, bucket: str, upload_id: str) -> str:
        """The key an open upload will create; NoSuchUpload if it is not open."""
        return str(read_json(self._directory(bucket, upload_id) / "upload.json")["key"])

    def put_part(self, bucket: str, upload_id: str, number: int, incoming: IncomingFile) -> Part:
        """Keep a finished ``incoming`` file as part ``number`` (replacing an earlier one)."""
        directory = self._directory(bucket, upload_id)
        part = Part(number, incoming.etag, incoming.size, self.store.clock())
        os.replace(incoming.path, directory / f"part-{number:05d}")
        write_json(directory / f"part-{number:05d}.json", asdict(part))
        return part

    def list_parts(self, bucket: str, upload_id: str) -> list[Part]:
        directory = self._directory(bucket, upload_id)
        return [Part(**read_json(p)) for p in sorted(directory.glob("part-*.json"))]

    def complete(
        self, bucket: str, upload_id: str, chosen: list[tuple[int, str]], limit: int
    ) -> ObjectVersion:
        """Join the ``(part number, etag)`` parts, in order, into the key's newest version."""
        directory = self._directory(bucket, upload_id)
        upload = read_json(directory / "upload.json")
        parts = _chosen_parts(self.list_parts(bucket, upload_id), chosen, limit)
        joined = self.store.incoming(limit)
        try:
            for part in parts:
                joined.append_file(directory / f"part-{part.number:05d}")
            joined.finish()
        except BaseException:
            joined.discard()
            raise
        digests = b"".join(bytes.fromhex(p.etag) for p in parts)
        etag = f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"
        key, headers = upload["key"], upload["headers"]
        version = self.store.commit(bucket, key, joined.path, etag, joined.size, headers)
        shutil.rmtree(directory, ignore_errors=True)
        return version

    def abort(self, bucket: str, upload_id: str) -> None:
        shutil.rmtree(self._directory(bucket, upload_id))

    def _directory(self, bucket: str, upload_id: str) -> Path:
        self.store.require_bucket(bucket)
        directory = self.store.root / bucket / "uploads" / upload_id
        if not is_token(upload_id) or not directory.is_dir():
            raise no_such_upload(upload_id)
        return directory


def _chosen_parts(uploaded: list[Part], chosen: list[tuple[int, str]], limit: int) -> list[Part]:
    """The parts a CompleteMultipartUpload names, checked the way S3 checks them."""
    if not chosen:
        raise S3Error("MalformedXML", "You must specify at least one part")
    numbers = [number for number, _ in chosen]
    if numbers != sorted(set(numbers)):
        raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order.")
    by_number = {p.number: p for p in uploaded}
    parts = []
    for number, etag in chosen:
        part = by_number.get(number)
        if part is None or part.etag != etag.strip().strip('"'):
            message = "One or more of the specified parts could not be found."
            raise S3Error("InvalidPart", message, 400, PartNumber=str(number), ETag=etag)
        parts.append(part)
    for part in parts[:-1]:
        if part.size < MIN_PART_BYTES:
            message = "Your proposed upload is smaller than the minimum allowed size"
            sizes = {"ProposedSize": str(part.size), "MinSizeAllowed": str(MIN_PART_BYTES)}
            raise S3Error("EntityTooSmall", message, 400, **sizes)
    total = sum(p.size for p in parts)
    if total > limit:
        raise entity_too_large(total, limit)
    return parts
