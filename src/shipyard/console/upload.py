"""Starting a deployment from a zip the browser uploads: read the multipart form under
the bundle size cap, check the bundle with the rules ``shipyard validate`` uses, store
it in the built-in bundle store as ``shipyard push`` would (bucket ``console-uploads``,
key ``<application>/<sha256[:16]>.zip``) and return the revision to register.

The zip is unpacked by the agent's own unpacker (same limits, same leading-directory
rule), so what passes here is what the hosts will find.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

from starlette.requests import Request

from shipyard.agent.bundle import BundleError, unpack
from shipyard.bundlestore.disk import BundleStore, S3Error
from shipyard.cli import pack
from shipyard.errors import ApiError
from shipyard.server.context import Services

BUCKET = "console-uploads"
FORM_SLACK = 64 * 1024  # the form's other fields and multipart framing


class BundleRefused(Exception):
    """The uploaded bundle is not one the agent would deploy; the message says why."""


@dataclass
class UploadForm:
    fields: dict[str, str]
    filename: str
    data: bytes


async def read_upload(request: Request, limit: int) -> UploadForm:
    """A ``multipart/form-data`` body of at most ``limit`` bytes of bundle."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError("InvalidInputException", "Upload the bundle as a form with a file.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit + FORM_SLACK:
            raise ApiError(
                "InvalidInputException",
                f"The bundle is larger than this server accepts ({limit} bytes).",
                413,
            )
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + bytes(body))
    fields: dict[str, str] = {}
    filename, data = "", b""
    if isinstance(message, EmailMessage) and message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(name, str) or not isinstance(payload, bytes):
                continue
            if part.get_filename() is not None:
                filename, data = str(part.get_filename()), payload
            else:
                fields[name] = payload.decode("utf-8", "replace")
    if len(data) > limit:
        raise ApiError("InvalidInputException", f"The bundle is larger than {limit} bytes.", 413)
    return UploadForm(fields, filename, data)


def check_bundle(data: bytes) -> None:
    """Raise ``BundleRefused`` naming the first thing the agent would refuse."""
    if not data:
        raise BundleRefused("Choose a zip file of the bundle directory.")
    with tempfile.TemporaryDirectory(prefix="shipyard-console-") as scratch:
        archive, tree = Path(scratch) / "bundle.zip", Path(scratch) / "tree"
        archive.write_bytes(data)
        try:
            unpack(archive, "zip", tree)
        except BundleError as exc:
            raise BundleRefused(f"The zip cannot be unpacked: {exc}") from None
        fatal = [p for p in pack.bundle_problems(tree) if p.fatal]
    if fatal:
        more = f" (and {len(fatal) - 1} more)" if len(fatal) > 1 else ""
        raise BundleRefused(f"The bundle is refused: {fatal[0]}{more}")


def store_bundle(services: Services, application: str, data: bytes) -> dict[str, Any]:
    """Put the zip in the built-in store; the S3 revision that names it."""
    if services.config.s3_endpoint:
        raise BundleRefused(
            "This server keeps bundles in an external S3 store: upload with shipyard push."
        )
    store = BundleStore(services.config.data_dir / "bundles", services.clock)
    try:
        store.create_bucket(BUCKET)
    except S3Error as exc:
        if exc.code != "BucketAlreadyOwnedByYou":
            raise
    key = f"{application}/{hashlib.sha256(data).hexdigest()[:16]}.zip"
    incoming = store.incoming(services.config.max_bundle_bytes)
    try:
        incoming.write(data)
        incoming.finish()
    except BaseException:
        incoming.discard()
        raise
    version = store.put(BUCKET, key, incoming, {"content-type": "application/zip"})
    location = {
        "bucket": BUCKET,
        "key": key,
        "bundleType": "zip",
        "eTag": version.etag,
        "version": version.version_id,
    }
    return {"revisionType": "S3", "s3Location": location}


async def checked_and_stored(services: Services, application: str, data: bytes) -> dict[str, Any]:
    """Both steps off the event loop (unpacking and writing can take a while)."""
    await asyncio.to_thread(check_bundle, data)
    return await asyncio.to_thread(store_bundle, services, application, data)
