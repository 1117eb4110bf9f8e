"""S3 multipart upload operations: create, upload part, list parts, complete, abort."""

from __future__ import annotations

from starlette.responses import Response

from shipyard.bundlestore.call import (
    MAX_XML_BODY,
    S3Call,
    owner,
    receive_object,
    run_blocking,
    stored_headers,
)
from shipyard.bundlestore.disk import S3Error
from shipyard.bundlestore.s3xml import Xml, iso_time, parse_xml, xml_response
from shipyard.bundlestore.uploads import MAX_PARTS, MultipartUploads


async def create_upload(call: S3Call) -> Response:
    uploads = MultipartUploads(call.store)
    headers = stored_headers(call.request)
    upload_id = await run_blocking(uploads.create, call.bucket, call.key, headers)
    result: Xml = [("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload_id)]
    return xml_response("InitiateMultipartUploadResult", result)


async def upload_part(call: S3Call) -> Response:
    number = _integer(call.query.get("partNumber", ""), "partNumber")
    if not 1 <= number <= MAX_PARTS:
        raise S3Error("InvalidArgument", f"Part number must be between 1 and {MAX_PARTS}")
    uploads = MultipartUploads(call.store)
    upload_id = call.query["uploadId"]
    await run_blocking(uploads.key_of, call.bucket, upload_id)  # NoSuchUpload before the body
    body = call.body()
    incoming = await receive_object(call, body)
    part = await run_blocking(uploads.put_part, call.bucket, upload_id, number, incoming)
    headers = {"etag": f'"{part.etag}"'}
    if body.checksum:
        headers[body.checksum[0]] = body.checksum[1]
    return Response(headers=headers)


async def complete_upload(call: S3Call) -> Response:
    document = parse_xml(await call.body().read_all(MAX_XML_BODY), "CompleteMultipartUpload")
    chosen = [
        (_integer(part.findtext("PartNumber") or "", "PartNumber"), part.findtext("ETag") or "")
        for part in document.iter("Part")
    ]
    uploads = MultipartUploads(call.store)
    limit = call.services.config.max_bundle_bytes
    upload_id = call.query["uploadId"]
    version = await run_blocking(uploads.complete, call.bucket, upload_id, chosen, limit)
    result: Xml = [
        ("Location", f"{call.services.config.url}/{call.bucket}/{call.key}"),
        ("Bucket", call.bucket),
        ("Key", call.key),
        ("ETag", f'"{version.etag}"'),
    ]
    response = xml_response("CompleteMultipartUploadResult", result)
    response.headers["x-amz-version-id"] = version.version_id
    return response


async def abort_upload(call: S3Call) -> Response:
    await run_blocking(MultipartUploads(call.store).abort, call.bucket, call.query["uploadId"])
    return Response(status_code=204)


async def list_parts(call: S3Call) -> Response:
    upload_id = call.query["uploadId"]
    marker = _integer(call.query.get("part-number-marker", "0"), "part-number-marker")
    max_parts = max(0, min(_integer(call.query.get("max-parts", "1000"), "max-parts"), 1000))
    parts = await run_blocking(MultipartUploads(call.store).list_parts, call.bucket, upload_id)
    parts = [p for p in parts if p.number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    result: Xml = [("Bucket", call.bucket), ("Key", call.key), ("UploadId", upload_id)]
    result += [("PartNumberMarker", marker), ("MaxParts", max_parts), ("IsTruncated", truncated)]
    if truncated:
        result.append(("NextPartNumberMarker", page[-1].number))
    result += [("Initiator", owner()), ("Owner", owner()), ("StorageClass", "STANDARD")]
    for part in page:
        entry: Xml = [("PartNumber", part.number), ("LastModified", iso_time(part.last_modified))]
        entry += [("ETag", f'"{part.etag}"'), ("Size", part.size)]
        result.append(("Part", entry))
    return xml_response("ListPartsResult", result)


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise S3Error("InvalidArgument", f"{name} must be an integer") from None
