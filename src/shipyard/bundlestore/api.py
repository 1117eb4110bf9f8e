"""The built-in bundle store's S3 API: path-style, XML, served on the Shipyard endpoint.

Virtual-hosted addressing too (``Host: <bucket>.<bucket_domain>``), as the stock
CodeDeploy agent's S3 client uses when it reaches the server by host name.

Enough of S3 for ``aws s3``, ``aws deploy push``, boto3 and the CodeDeploy agent: buckets,
objects (with Range and versionId), ListObjects v1 and v2, batch delete, copy and
multipart uploads. Admin keys may do everything; instance keys (agents) and the server's
internal bundle-reader key may only read objects.

Modules: this one routes and answers errors, and holds the bucket operations;
``s3_objects`` and ``s3_multipart`` the others; ``s3_auth`` checks signatures and
``s3_payload`` bodies; ``s3_xml`` renders; ``shipyard.bundlestore.disk`` stores.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.bundlestore import multipart_ops as multipart
from shipyard.bundlestore import object_ops as objects
from shipyard.bundlestore.auth import Authenticated, authenticate, raw_query_pairs
from shipyard.bundlestore.call import MAX_XML_BODY, S3Call, owner, run_blocking
from shipyard.bundlestore.disk import BundleStore, S3Error
from shipyard.bundlestore.s3xml import Xml, iso_time, list_objects_result, parse_xml, xml_response
from shipyard.config import ServerConfig
from shipyard.server.context import Services
from shipyard.server.tracked_receive import TrackedReceive

log = logging.getLogger("shipyard.s3")

Operation = Callable[[S3Call], Awaitable[Response]]
# Sub-resources this store does not implement: answered NotImplemented rather than being
# mistaken for a plain list or get.
UNSUPPORTED = frozenset(
    {"accelerate", "acl", "analytics", "attributes", "cors", "encryption", "inventory"}
    | {"intelligent-tiering", "legal-hold", "lifecycle", "logging", "metrics", "notification"}
    | {"object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock"}
    | {"replication", "requestPayment", "restore", "retention", "select", "tagging"}
    | {"torrent", "website"}
)
UNSUPPORTED_ON_BUCKETS = UNSUPPORTED | {"uploads", "versions"}
MAX_DRAINED_BODY = 64 * 1024 * 1024


def s3_routes(services: Services) -> list[Route]:
    """One catch-all route: add it after every other route of the app."""

    async def endpoint(request: Request) -> Response:
        return await handle(request, services)

    return [Route("/{path:path}", endpoint, methods=["GET", "HEAD", "PUT", "POST", "DELETE"])]


async def handle(request: Request, services: Services) -> Response:
    request_id = uuid.uuid4().hex[:16].upper()
    receive = _TrackedReceive(request.receive)
    request = Request(request.scope, receive)
    raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    try:
        bucket, key = _address(request, raw_path, services.config)
        auth = authenticate(request, services)
        query = dict(raw_query_pairs(request))
        _authorize(auth, request.method, key, query)
        store = BundleStore(services.config.data_dir / "bundles", services.clock)
        call = S3Call(request, services, store, auth, bucket, key, query)
        response = await _select(request.method, bucket, key, query)(call)
    except S3Error as exc:
        response = _error_response(exc, request.method, raw_path, request_id)
    except ClientDisconnect:
        return Response(status_code=400)  # nobody is left to read an answer
    except Exception:
        log.exception("S3 request failed")
        failure = S3Error("InternalError", "We encountered an internal error.", 500)
        response = _error_response(failure, request.method, raw_path, request_id)
    expect = request.headers.get("expect", "")
    drain_seconds = services.config.header_timeout
    if response.status_code >= 400 and not await receive.drain(expect, drain_seconds):
        response.headers["connection"] = "close"
    response.headers["x-amz-request-id"] = request_id
    return response


class _TrackedReceive(TrackedReceive):
    async def drain(self, expect: str, seconds: float) -> bool:
        """Read and drop what is left of a refused body; False if the connection must close.

        A client that sent its body without waiting reads no answer until it has sent it
        all, so we read it (up to a size and a time: a refused client trickling a body
        must not hold a connection). A client waiting for "100-continue" must not be made
        to send it; the connection then closes, as the server cannot tell where the next
        request would begin.
        """
        if self.body_done:
            return True
        if expect.lower() == "100-continue":
            return False
        dropped = 0
        try:
            async with asyncio.timeout(seconds):
                while not self.body_done:
                    dropped += len((await self()).get("body", b""))
                    if dropped > MAX_DRAINED_BODY:
                        return False
        except TimeoutError:
            return False
        return True


def _address(request: Request, raw_path: str, config: ServerConfig) -> tuple[str, str]:
    """The bucket and key a request names: by its Host header when that is a bucket's
    own name under the bucket domain (virtual-hosted), else by its path."""
    domain = bucket_domain(config)
    host = request.headers.get("host", "").lower()
    name = host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else host
    if domain and name.endswith("." + domain):
        bucket = name.removesuffix("." + domain)
        return bucket, _decoded(raw_path.removeprefix("/"))
    bucket, _, key = _decoded(raw_path.lstrip("/")).partition("/")
    return bucket, key


def bucket_domain(config: ServerConfig) -> str:
    """The host name buckets are served under: ``bucket_domain``, else the public URL's
    host name (an IP address has no subdomains)."""
    if config.bucket_domain:
        return config.bucket_domain.lower().rstrip(".")
    name = (urlsplit(config.public_url).hostname or "") if config.public_url else ""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    return ""


def _decoded(path: str) -> str:
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") from None


def _authorize(auth: Authenticated, method: str, key: str, query: dict[str, str]) -> None:
    if auth.principal.kind == "function":
        raise S3Error("AccessDenied", "Function credentials may not use the bundle store", 403)
    if auth.principal.kind == "admin":
        return
    if key and method in ("GET", "HEAD") and "uploadId" not in query:
        return
    raise S3Error("AccessDenied", f"{auth.principal.kind} credentials may only read objects", 403)


def _select(method: str, bucket: str, key: str, query: dict[str, str]) -> Operation:
    """The operation a request names: by method, level and sub-resource, as S3 routes."""
    subs: tuple[str, ...]
    unsupported: frozenset[str]
    if not bucket:
        table, subs, unsupported = SERVICE_OPERATIONS, (), frozenset()
    elif key:
        table, subs, unsupported = OBJECT_OPERATIONS, ("uploadId", "uploads"), UNSUPPORTED
    else:
        table, subs, unsupported = BUCKET_OPERATIONS, BUCKET_SUBRESOURCES, UNSUPPORTED_ON_BUCKETS
    asked = unsupported & query.keys()
    if asked:
        raise S3Error("NotImplemented", f"The {min(asked)!r} sub-resource is not implemented", 501)
    operation = table.get((method, next((s for s in subs if s in query), None)))
    if operation is None:
        message = "The specified method is not allowed against this resource."
        raise S3Error("MethodNotAllowed", message, 405, Method=method)
    return operation


def _error_response(exc: S3Error, method: str, resource: str, request_id: str) -> Response:
    if method == "HEAD":  # HEAD answers carry no body: the status says it all
        return Response(status_code=exc.status)
    fields: Xml = [("Code", exc.code), ("Message", exc.message), *exc.fields.items()]
    fields += [("Resource", resource), ("RequestId", request_id)]
    return xml_response("Error", fields, exc.status, namespace=False)


# -- buckets -------------------------------------------------------------------------------


async def list_buckets(call: S3Call) -> Response:
    buckets = await run_blocking(call.store.list_buckets)
    listed: Xml = [
        ("Bucket", [("Name", name), ("CreationDate", iso_time(created))])
        for name, created in buckets
    ]
    return xml_response("ListAllMyBucketsResult", [("Owner", owner()), ("Buckets", listed)])


async def create_bucket(call: S3Call) -> Response:
    await call.body().read_all(MAX_XML_BODY)  # a location constraint: there is one region
    await run_blocking(call.store.create_bucket, call.bucket)
    return Response(headers={"location": f"/{call.bucket}"})


async def head_bucket(call: S3Call) -> Response:
    await run_blocking(call.store.require_bucket, call.bucket)
    return Response(headers={"x-amz-bucket-region": call.services.config.region})


async def delete_bucket(call: S3Call) -> Response:
    await run_blocking(call.store.delete_bucket, call.bucket)
    return Response(status_code=204)


async def get_bucket_location(call: S3Call) -> Response:
    await run_blocking(call.store.require_bucket, call.bucket)
    region = call.services.config.region
    return xml_response("LocationConstraint", "" if region == "us-east-1" else region)


async def get_bucket_versioning(call: S3Call) -> Response:
    await run_blocking(call.store.require_bucket, call.bucket)
    return xml_response("VersioningConfiguration", [("Status", "Enabled")])


async def list_objects(call: S3Call) -> Response:
    versions = await run_blocking(call.store.list_latest, call.bucket)
    return list_objects_result(call.bucket, versions, call.query, owner())


async def delete_objects(call: S3Call) -> Response:
    document = parse_xml(await call.body().read_all(MAX_XML_BODY), "Delete")
    wanted = [(o.findtext("Key") or "", o.findtext("VersionId")) for o in document.iter("Object")]
    if not 1 <= len(wanted) <= 1000:
        raise S3Error("MalformedXML", "Delete takes between 1 and 1000 objects")
    quiet = (document.findtext("Quiet") or "").strip().lower() == "true"
    results: Xml = []
    for key, version_id in wanted:
        try:
            await run_blocking(call.store.delete, call.bucket, key, version_id)
        except S3Error as exc:
            results.append(("Error", [("Key", key), ("Code", exc.code), ("Message", exc.message)]))
            continue
        if not quiet:
            deleted: Xml = [("Key", key)]
            if version_id:
                deleted.append(("VersionId", version_id))
            results.append(("Deleted", deleted))
    return xml_response("DeleteResult", results)


SERVICE_OPERATIONS: dict[tuple[str, str | None], Operation] = {
    ("GET", None): list_buckets,
    ("HEAD", None): list_buckets,
}
BUCKET_SUBRESOURCES = ("location", "versioning", "delete")
BUCKET_OPERATIONS: dict[tuple[str, str | None], Operation] = {
    ("PUT", None): create_bucket,
    ("HEAD", None): head_bucket,
    ("DELETE", None): delete_bucket,
    ("GET", None): list_objects,
    ("GET", "location"): get_bucket_location,
    ("GET", "versioning"): get_bucket_versioning,
    ("POST", "delete"): delete_objects,
}
OBJECT_OPERATIONS: dict[tuple[str, str | None], Operation] = {
    ("PUT", None): objects.put_object,
    ("GET", None): objects.get_object,
    ("HEAD", None): objects.get_object,
    ("DELETE", None): objects.delete_object,
    ("POST", "uploads"): multipart.create_upload,
    ("PUT", "uploadId"): multipart.upload_part,
    ("GET", "uploadId"): multipart.list_parts,
    ("POST", "uploadId"): multipart.complete_upload,
    ("DELETE", "uploadId"): multipart.abort_upload,
}
