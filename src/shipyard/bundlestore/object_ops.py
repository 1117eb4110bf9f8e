"""S3 object operations: put, copy, get and head (with Range and versionId), delete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote

import anyio.to_thread
from starlette.responses import Response, StreamingResponse

from shipyard.bundlestore.call import (
    STORED_HEADERS,
    S3Call,
    receive_object,
    run_blocking,
    stored_headers,
)
from shipyard.bundlestore.disk import (
    BundleStore,
    IncomingFile,
    ObjectVersion,
    S3Error,
    check_key,
    no_such_key,
)
from shipyard.bundlestore.s3xml import http_date, iso_time, xml_response

READ_BLOCK = 1024 * 1024
SMALL_OBJECT = 256 * 1024  # read whole, not streamed (get_object)
# Presigned GETs may ask for other response headers, e.g. response-content-disposition.
RESPONSE_OVERRIDES = {f"response-{name}": name for name in STORED_HEADERS}


async def put_object(call: S3Call) -> Response:
    if "x-amz-copy-source" in call.request.headers:
        return await copy_object(call)
    await run_blocking(call.store.require_bucket, call.bucket)
    check_key(call.key)
    body = call.body()
    incoming = await receive_object(call, body)
    headers = stored_headers(call.request)
    version = await run_blocking(call.store.put, call.bucket, call.key, incoming, headers)
    answer = {"etag": f'"{version.etag}"', "x-amz-version-id": version.version_id}
    if body.checksum:
        answer[body.checksum[0]] = body.checksum[1]
    return Response(headers=answer)


async def copy_object(call: S3Call) -> Response:
    source, _, source_query = unquote(call.request.headers["x-amz-copy-source"]).partition("?")
    source_bucket, _, source_key = source.lstrip("/").partition("/")
    source_version = source_query.removeprefix("versionId=") or None
    original = await run_blocking(call.store.get, source_bucket, source_key, source_version)
    check_key(call.key)
    incoming = call.store.incoming(call.services.config.max_bundle_bytes)
    try:
        await run_blocking(_copy_into, incoming, original.path)
    except FileNotFoundError:  # deleted while we copied
        incoming.discard()
        raise no_such_key(source_key) from None
    except BaseException:
        incoming.discard()
        raise
    replace = call.request.headers.get("x-amz-metadata-directive", "").upper() == "REPLACE"
    headers = stored_headers(call.request) if replace else original.headers
    version = await run_blocking(call.store.put, call.bucket, call.key, incoming, headers)
    etag, modified = f'"{version.etag}"', iso_time(version.last_modified)
    response = xml_response("CopyObjectResult", [("ETag", etag), ("LastModified", modified)])
    response.headers["x-amz-version-id"] = version.version_id
    response.headers["x-amz-copy-source-version-id"] = original.version_id
    return response


def _copy_into(incoming: IncomingFile, path: Path) -> None:
    with open(path, "rb") as source:
        while block := source.read(READ_BLOCK):
            incoming.write(block)
    incoming.finish()


async def get_object(call: S3Call) -> Response:
    """GetObject, and HeadObject: the same headers without the body.

    An object up to ``SMALL_OBJECT`` bytes is read whole with its metadata, in one trip
    to a worker thread, and answered as one body: every agent downloads its bundle at
    each deployment, and streaming costs two more thread trips and a task group."""
    version_id = call.query.get("versionId")
    with_body = call.request.method == "GET"
    version, whole = await run_blocking(
        _version_and_body, call.store, call.bucket, call.key, version_id, with_body
    )
    headers = dict(version.headers)
    headers["etag"] = f'"{version.etag}"'
    headers["last-modified"] = http_date(version.last_modified)
    headers["x-amz-version-id"] = version.version_id
    headers["accept-ranges"] = "bytes"
    for parameter, header in RESPONSE_OVERRIDES.items():
        if parameter in call.query:
            headers[header] = call.query[parameter]
    start, length, status = 0, version.size, 200
    wanted = parse_range(call.request.headers.get("range", ""), version.size)
    if wanted is not None:
        start, end = wanted
        length, status = end - start + 1, 206
        headers["content-range"] = f"bytes {start}-{end}/{version.size}"
    headers["content-length"] = str(length)
    if call.request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    if whole is not None:
        return Response(whole[start : start + length], status_code=status, headers=headers)
    try:
        handle = open(version.path, "rb")  # noqa: SIM115 - closed by the streaming generator
    except FileNotFoundError:  # deleted since we read its metadata
        raise no_such_key(call.key) from None
    stream = _stream_file(handle, start, length)
    return StreamingResponse(stream, status_code=status, headers=headers)


def _version_and_body(
    store: BundleStore, bucket: str, key: str, version_id: str | None, with_body: bool
) -> tuple[ObjectVersion, bytes | None]:
    """The object's version, and with ``with_body`` its bytes when it is at most
    ``SMALL_OBJECT`` long (None: stream it)."""
    version = store.get(bucket, key, version_id)
    if not with_body or version.size > SMALL_OBJECT:
        return version, None
    try:
        with open(version.path, "rb") as handle:
            return version, handle.read()
    except FileNotFoundError:  # deleted since we read its metadata
        raise no_such_key(key) from None


async def _stream_file(handle: IO[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            block = await anyio.to_thread.run_sync(handle.read, min(READ_BLOCK, length))
            if not block:
                break
            length -= len(block)
            yield block
    finally:
        handle.close()


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte of a single ``bytes=`` range; None to send the whole object."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not match or match.groups() == ("", ""):
        return None  # absent, several ranges or not understood: HTTP lets us ignore it
    first, last = match.groups()
    if not first:  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    elif last and int(last) < int(first):
        return None
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        sizes = {"RangeRequested": header, "ActualObjectSize": str(size)}
        raise S3Error("InvalidRange", "The requested range is not satisfiable", 416, **sizes)
    return start, end


async def delete_object(call: S3Call) -> Response:
    version_id = call.query.get("versionId")
    await run_blocking(call.store.delete, call.bucket, call.key, version_id)
    headers = {"x-amz-version-id": version_id} if version_id else None
    return Response(status_code=204, headers=headers)
