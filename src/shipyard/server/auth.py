"""Who is calling: SigV4 verification of JSON API requests against issued keys."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request

from shipyard import sigv4
from shipyard.errors import ApiError
from shipyard.server.context import Principal, Services
from shipyard.store import credentials

MAX_CLOCK_SKEW = dt.timedelta(minutes=15)


def authenticate(request: Request, body: bytes, services: Services) -> Principal:
    """Verify the request's SigV4 header signature; return the calling principal."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(
            "MissingAuthenticationTokenException", "Request is missing Authentication Token", 403
        )
    try:
        parsed = sigv4.parse_authorization(header)
    except sigv4.SignatureError as exc:
        raise ApiError(exc.name, str(exc), 403) from None
    with services.db.tx() as conn:
        found = credentials.lookup(conn, parsed.access_key_id)
    if found is None:
        raise ApiError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    secret, kind, name = found
    amz_date = request.headers.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise ApiError(
            "IncompleteSignatureException", "Missing or malformed X-Amz-Date", 403
        ) from None
    now = dt.datetime.fromtimestamp(services.clock(), dt.UTC)
    if abs(now - when) > MAX_CLOCK_SKEW:
        raise ApiError("InvalidSignatureException", "Signature expired", 403)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = [(k, v) for k, v in request.query_params.multi_items()]
    ok = sigv4.verify(
        parsed,
        secret,
        method=request.method,
        # As sent: botocore signs the encoded path (an ARN's ':' as %3A) encoded once more.
        path=(request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1"),
        query=query,
        headers=headers,
        payload_hash=sigv4.sha256_hex(body),
        amz_date=amz_date,
    )
    if not ok:
        raise ApiError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided.",
            403,
        )
    return Principal(kind, name)


# A function worker's key (principal kind "function") may report hook results, read
# CodeDeploy, and invoke functions; nothing else. Checked for every API the server answers.
FUNCTION_WRITES = frozenset(
    {("codedeploy", "PutLifecycleEventHookExecutionStatus"), ("lambda", "Invoke")}
)
READ_PREFIXES = ("Get", "List", "BatchGet")


def authorize(principal: Principal, service: str, operation: str) -> None:
    """Refuse what a function's key may not call (other kinds are checked where routed)."""
    if principal.kind != "function":
        return
    if (service, operation) in FUNCTION_WRITES:
        return
    # CodeDeploy reads only: Lambda's would show other functions' environment variables.
    if service == "codedeploy" and operation.startswith(READ_PREFIXES):
        return
    raise ApiError(
        "AccessDeniedException",
        f"Function credentials may not call {service}:{operation}",
        403,
    )
