"""Who is calling the S3 API: SigV4 with the keys in the ``credentials`` table.

Two ways to sign: the Authorization header (the body is then checked by ``s3_payload`` as
it streams, the way ``x-amz-content-sha256`` declares), or a presigned URL
(``X-Amz-Signature`` and friends in the query) with an expiry. S3 signs the path exactly
as sent: it is not encoded a second time as other services' paths are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request

from shipyard import sigv4
from shipyard.bundlestore.disk import S3Error
from shipyard.bundlestore.payload import (
    STREAMING_SIGNED,
    STREAMING_UNSIGNED_TRAILER,
    ChunkChain,
    is_sha256_hex,
    signature_mismatch,
)
from shipyard.server.context import Principal, Services
from shipyard.store import credentials

MAX_CLOCK_SKEW = 15 * 60
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    payload_hash: str  # x-amz-content-sha256 as signed; UNSIGNED-PAYLOAD for presigned URLs
    chain: ChunkChain | None = None  # only for STREAMING-AWS4-HMAC-SHA256-PAYLOAD


def raw_query_pairs(request: Request) -> list[tuple[str, str]]:
    """Query pairs decoded without turning '+' into a space (SigV4 encodes spaces as %20)."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    pairs = []
    for item in raw.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def authenticate(request: Request, services: Services) -> Authenticated:
    """Verify the header or query signature; the body is verified later, as it streams."""
    query = raw_query_pairs(request)
    headers = {name: ",".join(request.headers.getlist(name)) for name in request.headers}
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    base = _RequestParts(request.method, raw_path.decode("latin-1"), query, headers)
    if any(name == "X-Amz-Signature" for name, _ in query):
        return _presigned(base, services)
    if "authorization" in headers:
        return _header_signed(base, services)
    raise S3Error("AccessDenied", "Anonymous access is not allowed: sign the request", 403)


@dataclass(frozen=True)
class _RequestParts:
    method: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]


def _lookup(services: Services, access_key_id: str) -> tuple[str, Principal | None]:
    """The key's secret and owner; for an unknown key a stand-in secret and no owner.

    An unknown key is then refused as a wrong signature is, after the same work, so
    that answers do not tell which key ids exist."""
    found = credentials.find_key(services.db.quick, services.db.secret_box, access_key_id)
    if found is None:
        return sigv4.DUMMY_SECRET, None
    secret, kind, name, role = found
    return secret, Principal(kind, name, role)


def _check_credential(parsed: sigv4.ParsedAuthorization, amz_date: str, services: Services) -> None:
    regions = services.config.signing_region_set
    try:
        sigv4.check_signed_headers(parsed, ["host"])
        sigv4.check_scope(parsed, amz_date, services=("s3",), regions=regions)
    except sigv4.SignatureError as exc:
        raise S3Error("AuthorizationHeaderMalformed", str(exc)) from None


def _parse_amz_date(value: str) -> float:
    return dt.datetime.strptime(value, _AMZ_DATE).replace(tzinfo=dt.UTC).timestamp()


def _header_signed(req: _RequestParts, services: Services) -> Authenticated:
    try:
        parsed = sigv4.parse_authorization(req.headers["authorization"])
    except sigv4.SignatureError as exc:
        raise S3Error("AuthorizationHeaderMalformed", str(exc)) from None
    amz_date = req.headers.get("x-amz-date", "")
    try:
        if not amz_date and "date" in req.headers:
            amz_date = parsedate_to_datetime(req.headers["date"]).strftime(_AMZ_DATE)
        when = _parse_amz_date(amz_date)
    except (TypeError, ValueError):
        raise S3Error(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header", 403
        ) from None
    if abs(services.clock() - when) > MAX_CLOCK_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            403,
            RequestTime=amz_date,
        )
    _check_credential(parsed, amz_date, services)
    payload_hash = req.headers.get("x-amz-content-sha256", "")
    if not payload_hash:
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    known = (sigv4.UNSIGNED_PAYLOAD, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER)
    if payload_hash not in known and not is_sha256_hex(payload_hash):
        raise S3Error(
            "InvalidArgument",
            f"x-amz-content-sha256 must be a SHA-256 hex digest or one of {', '.join(known)}",
        )
    secret, principal = _lookup(services, parsed.access_key_id)
    ok = sigv4.verify(
        parsed,
        secret,
        method=req.method,
        path=req.raw_path,
        query=req.query,
        headers=req.headers,
        payload_hash=payload_hash,
        amz_date=amz_date,
        encode_path=False,
    )
    if not ok or principal is None:
        raise signature_mismatch()
    chain = None
    if payload_hash == STREAMING_SIGNED:
        date, region, service, _ = parsed.scope.split("/")
        key = sigv4.signing_key(secret, date, region, service)
        chain = ChunkChain(key, amz_date, parsed.scope, parsed.signature)
    return Authenticated(principal, payload_hash, chain)


def _presigned(req: _RequestParts, services: Services) -> Authenticated:
    params = dict(req.query)
    try:
        if params["X-Amz-Algorithm"] != sigv4.ALGORITHM:
            raise ValueError("only AWS4-HMAC-SHA256 is supported")
        access_key_id, _, scope = params["X-Amz-Credential"].partition("/")
        if scope.count("/") != 3:
            raise ValueError("malformed X-Amz-Credential")
        amz_date = params["X-Amz-Date"]
        when = _parse_amz_date(amz_date)
        expires = int(params["X-Amz-Expires"])
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_SECONDS}")
        signed_headers = params["X-Amz-SignedHeaders"].split(";")
        parsed = sigv4.ParsedAuthorization(
            access_key_id, scope, signed_headers, params["X-Amz-Signature"]
        )
    except (KeyError, ValueError) as exc:
        detail = f"missing {exc.args[0]}" if isinstance(exc, KeyError) else str(exc)
        raise S3Error(
            "AuthorizationQueryParametersError", f"Query-string authentication: {detail}"
        ) from None
    _check_credential(parsed, amz_date, services)
    now = services.clock()
    if now > when + expires:
        raise S3Error("AccessDenied", "Request has expired", 403, XAmzExpires=str(expires))
    if when - now > MAX_CLOCK_SKEW:
        raise S3Error("AccessDenied", "Request is not valid yet", 403)
    query = [(k, v) for k, v in req.query if k != "X-Amz-Signature"]
    secret, principal = _lookup(services, access_key_id)
    ok = sigv4.verify(
        parsed,
        secret,
        method=req.method,
        path=req.raw_path,
        query=query,
        headers=req.headers,
        payload_hash=sigv4.UNSIGNED_PAYLOAD,
        amz_date=amz_date,
        encode_path=False,
    )
    if not ok or principal is None:
        raise signature_mismatch()
    return Authenticated(principal, sigv4.UNSIGNED_PAYLOAD)


def presign_url(
    creds: sigv4.Credentials,
    *,
    endpoint: str,
    bucket: str,
    key: str,
    region: str,
    now: float,
    expires: int,
    method: str = "GET",
    version_id: str | None = None,
) -> str:
    """A path-style presigned URL for ``bucket/key`` on any S3-compatible ``endpoint``."""
    parts = urlsplit(endpoint)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != default_port:
        host = f"{host}:{parts.port}"
    path = f"{parts.path.rstrip('/')}/{quote(bucket, safe='')}/{quote(key, safe='/~')}"
    amz_date = dt.datetime.fromtimestamp(now, dt.UTC).strftime(_AMZ_DATE)
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    query = [("versionId", version_id)] if version_id else []
    query += [
        ("X-Amz-Algorithm", sigv4.ALGORITHM),
        ("X-Amz-Credential", f"{creds.access_key_id}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(max(1, min(expires, MAX_PRESIGN_SECONDS)))),
        ("X-Amz-SignedHeaders", "host"),
    ]
    canonical = sigv4.canonical_request(
        method, path, query, {"host": host}, ["host"], sigv4.UNSIGNED_PAYLOAD, encode_path=False
    )
    signature = sigv4.signature(creds.secret_access_key, amz_date, scope, canonical)
    query_string = sigv4.canonical_query(query)
    return f"{parts.scheme}://{host}{path}?{query_string}&X-Amz-Signature={signature}"
