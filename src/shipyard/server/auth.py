"""Who is calling: SigV4 verification of JSON API requests against issued keys.

In two steps, so that nobody without a key makes the server read a body.
``from_headers`` checks everything the headers carry (the signed header list, the
credential scope, the request time) and looks the key up: unsigned requests and unknown
keys are refused before a byte of body is read. ``PendingSignature.verify`` then checks
the signature over the SHA-256 of the body, computed while the body streams in under its
cap. A client that sends ``x-amz-content-sha256`` has its signature checked from the
headers alone, and the body against that hash once read.

An unknown key id and a wrong signature get the same answer, after the same work (a
signature computed with a stand-in secret), so that answers do not tell which key ids
exist.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from shipyard import sigv4
from shipyard.errors import ApiError
from shipyard.server import permissions
from shipyard.server.context import Principal, Services
from shipyard.store import credentials
from shipyard.store.quick_reads import QuickReads

MAX_CLOCK_SKEW_SECONDS = 15 * 60
EMPTY_SHA256 = sigv4.sha256_hex(b"")
# Signing names: the stock agent signs as codedeploy-commands-secure under
# ``:enable_auth_policy: true``.
API_SIGNING_NAMES = frozenset({"codedeploy"})
AGENT_SIGNING_NAMES = frozenset({"codedeploy-commands", "codedeploy-commands-secure"})
# Headers that change what a JSON request does: a signature must cover them.
SIGNED_ALWAYS = ("host", "x-amz-target")
SIGNED_WHEN_SENT = ("content-type", "x-amz-content-sha256")


def invalid_credentials() -> ApiError:
    """The one answer to an unknown key id, a wrong signature and a tampered body."""
    return ApiError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid, "
        "or the request signature does not match it.",
        403,
    )


def _incomplete(message: str) -> ApiError:
    return ApiError("IncompleteSignatureException", message, 403)


def request_headers(request: Request) -> dict[str, str]:
    """Header values as SigV4 canonicalises them: repeated headers joined with commas.

    Routing reads the same values, so a second ``X-Amz-Target`` added to a signed
    request changes the canonical request too instead of slipping past the signature.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:  # names are lower-case (ASGI)
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


@dataclass(frozen=True)
class PendingSignature:
    """A request whose headers passed; its signature is checked over the body's hash."""

    principal: Principal
    secret: str
    parsed: sigv4.ParsedAuthorization
    request: Request
    headers: dict[str, str]
    amz_date: str
    declared_hash: str  # x-amz-content-sha256, already verified; "" when not sent
    # What ``from_headers``' ``also`` read beside the key (None if not asked, or for an
    # unknown key); not to be used before ``verify`` passed.
    prefetched: Any = None

    def matches(self, payload_hash: str) -> bool:
        return sigv4.verify(
            self.parsed,
            self.secret,
            method=self.request.method,
            # As sent: botocore signs the encoded path (an ARN's ':' as %3A) encoded once
            # more, so the decoded path would not match.
            path=(self.request.scope.get("raw_path") or self.request.url.path.encode()).decode(
                "latin-1"
            ),
            query=(
                list(self.request.query_params.multi_items())
                if self.request.scope.get("query_string")
                else []
            ),
            headers=self.headers,
            payload_hash=payload_hash,
            amz_date=self.amz_date,
        )

    def verify(self, body_sha256: str) -> Principal:
        if self.declared_hash:
            ok = hmac.compare_digest(self.declared_hash, body_sha256)
        else:
            ok = self.matches(body_sha256)
        if not ok:
            raise invalid_credentials()
        return self.principal


def require_token(headers: dict[str, str]) -> str:
    """The Authorization header; unsigned requests learn nothing more than this."""
    header = headers.get("authorization")
    if not header:
        raise ApiError(
            "MissingAuthenticationTokenException", "Request is missing Authentication Token", 403
        )
    return header


def from_headers(
    request: Request,
    headers: dict[str, str],
    services: Services,
    signing_names: Collection[str],
    signed_always: Collection[str] = SIGNED_ALWAYS,
    also: Callable[[QuickReads], Any] | None = None,
) -> PendingSignature:
    """Check what the headers carry; raise before any body is read if that is wrong.

    ``signed_always``: the headers a signature must cover (a REST API such as Lambda's
    has no ``x-amz-target``: its path and method say what the request does). ``also``
    reads what the request will need beside the key (Invoke: its function's version),
    through the same quick reads (store/quick_reads.py). It must not raise; its result
    is ``prefetched``."""
    header = require_token(headers)
    amz_date = headers.get("x-amz-date", "")
    try:
        parsed = sigv4.parse_authorization(header)
        when = _request_time(amz_date)
    except sigv4.SignatureError as exc:
        raise ApiError(exc.name, str(exc), 403) from None
    except ValueError:
        raise _incomplete("Missing or malformed X-Amz-Date") from None
    if abs(services.clock() - when) > MAX_CLOCK_SKEW_SECONDS:
        raise ApiError("InvalidSignatureException", "Signature expired", 403)
    required = [*signed_always, *(name for name in SIGNED_WHEN_SENT if name in headers)]
    try:
        sigv4.check_signed_headers(parsed, required)
        sigv4.check_scope(
            parsed, amz_date, services=signing_names, regions=services.config.signing_region_set
        )
    except sigv4.SignatureError as exc:
        raise ApiError(exc.name, str(exc), 403) from None
    declared = headers.get("x-amz-content-sha256", "")
    if declared and not (len(declared) == 64 and all(c in "0123456789abcdef" for c in declared)):
        raise _incomplete("x-amz-content-sha256 must be the body's SHA-256 in lower-case hex")
    prefetched = None
    reads = services.db.quick
    found = credentials.find_key(reads, services.db.secret_box, parsed.access_key_id)
    if found is not None and also is not None:
        prefetched = also(reads)
    secret, kind, name, role = found if found is not None else (sigv4.DUMMY_SECRET, "", "", "")
    pending = PendingSignature(
        Principal(kind, name, role),
        secret,
        parsed,
        request,
        headers,
        amz_date,
        declared,
        prefetched,
    )
    # Checked now: with the body's hash declared, or with no key to check it against
    # (the same work as a wrong signature, and the same answer).
    check_now = bool(declared) or found is None
    if check_now and (not pending.matches(declared or EMPTY_SHA256) or found is None):
        raise invalid_credentials()
    return pending


# Memoised: X-Amz-Date changes once a second, and strptime is slow.
@functools.lru_cache(maxsize=64)
def _request_time(amz_date: str) -> float:
    """X-Amz-Date (``20261204T210000Z``) as a Unix time; ValueError when malformed."""
    return dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()


def authorize(principal: Principal, service: str, operation: str) -> None:
    """Refuse what a function's key may not call (other kinds are checked where routed);
    the policy is ``permissions.function_may``."""
    if principal.kind != "function" or permissions.function_may(service, operation):
        return
    raise ApiError(
        "AccessDeniedException",
        f"Function credentials may not call {service}:{operation}",
        403,
    )
