"""What every S3 operation of the bundle store is given, and the steps they share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import Request

from shipyard.bundlestore.auth import Authenticated
from shipyard.bundlestore.disk import BundleStore, IncomingFile, S3Error, entity_too_large
from shipyard.bundlestore.payload import VerifiedBody, is_chunked
from shipyard.bundlestore.s3xml import Xml
from shipyard.server.context import Services

DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Content headers kept with an object and sent back when it is read.
STORED_HEADERS: tuple[str, ...] = ("content-type", "content-encoding", "content-disposition")
STORED_HEADERS += ("cache-control", "content-language", "expires")
MAX_XML_BODY = 2 * 1024 * 1024


@dataclass
class S3Call:
    request: Request
    services: Services
    store: BundleStore
    auth: Authenticated
    bucket: str
    key: str
    query: dict[str, str]

    def body(self) -> VerifiedBody:
        return VerifiedBody(self.request, self.auth.payload_hash, self.auth.chain)


async def run_blocking(func: Callable[..., Any], *args: Any) -> Any:
    """Run blocking disk work (fsync, locks, joining parts) off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args))


async def receive_object(call: S3Call, body: VerifiedBody) -> IncomingFile:
    """Stream the verified body into the store's temporary area.

    The result is provisional: it only becomes an object or a part once committed, and it
    is removed here if anything fails (too large, a bad signature or checksum...).
    """
    limit = call.services.config.max_bundle_bytes
    header = "x-amz-decoded-content-length" if is_chunked(body.payload_hash) else "content-length"
    declared = call.request.headers.get(header)
    if declared is not None:
        if not declared.isdigit():
            raise S3Error("InvalidArgument", f"{header} must be a number of bytes")
        if int(declared) > limit:  # refused before reading, while the client awaits 100-continue
            raise entity_too_large(int(declared), limit)
    incoming = call.store.incoming(limit)
    try:
        async for piece in body.chunks():
            incoming.write(piece)
        await run_blocking(incoming.finish)
    except BaseException:
        incoming.discard()
        raise
    return incoming


def stored_headers(request: Request) -> dict[str, str]:
    """The content headers and ``x-amz-meta-*`` of a new object, as the client sent them."""
    headers = {name: request.headers[name] for name in STORED_HEADERS if name in request.headers}
    headers.setdefault("content-type", DEFAULT_CONTENT_TYPE)
    encodings = [e.strip() for e in headers.pop("content-encoding", "").split(",")]
    encodings = [e for e in encodings if e and e != "aws-chunked"]  # transport, not content
    if encodings:
        headers["content-encoding"] = ",".join(encodings)
    headers.update((k, v) for k, v in request.headers.items() if k.startswith("x-amz-meta-"))
    return headers


def owner() -> Xml:
    return [("ID", "shipyard"), ("DisplayName", "shipyard")]
