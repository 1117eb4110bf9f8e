"""AWS Signature Version 4: signing (agent, tests) and verifying (server).

Small on purpose: the agent signs with this instead of importing botocore, which
keeps its resident memory low. For the same reason it hashes with CPython's built-in
SHA-256 where there is one: :mod:`hashlib` (and :mod:`hmac`, which imports it) maps
OpenSSL's libcrypto, about 3.5 MiB of resident memory that an agent talking plain HTTP
has no other use for. What is hashed here is small (requests, not uploads), so the
built-in's lower throughput does not show.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from urllib.parse import quote

if TYPE_CHECKING:
    from hashlib import _Hash

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Verifies the signatures of unknown key ids, so that they cost what a wrong signature costs.
DUMMY_SECRET = "shipyard-no-such-key-0000000000000000000"
_BLOCK_SIZE = 64  # SHA-256's, which HMAC pads the key to
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


def _sha256_constructor() -> Callable[[bytes], _Hash]:
    for name in ("_sha2", "_sha256"):  # CPython's built-in: _sha2 from 3.12, _sha256 before
        try:
            return cast("Callable[[bytes], _Hash]", importlib.import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    import hashlib  # an interpreter built without it: the OpenSSL one does as well

    return hashlib.sha256


_sha256 = _sha256_constructor()


def sha256_hex(data: bytes) -> str:
    return _sha256(data).hexdigest()


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104), here rather than :mod:`hmac` to keep libcrypto out."""
    if len(key) > _BLOCK_SIZE:
        key = _sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\0")
    inner = _sha256(key.translate(_IPAD) + msg).digest()
    return _sha256(key.translate(_OPAD) + inner).digest()


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac_sha256(key, msg.encode())


SIGNING_KEYS_KEPT = 16384


# Memoised: a key signs (or is checked) many times a day, and deriving it is four HMACs.
# Bounded; an entry is only of use to whoever already holds the secret. The server checks
# one key per agent, in turn: a bound under the fleet's size made every check a miss (at
# 256, every request of a 2,000-agent fleet derived its key again). About 0.3 KiB each.
@functools.lru_cache(maxsize=SIGNING_KEYS_KEPT)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe="/-_.~" if keep_slash else "-_.~")


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted(
        (uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
    *,
    encode_path: bool = True,
) -> str:
    """``headers`` must have lower-case names. ``path`` is as sent (already encoded)."""
    canonical_path = uri_encode(path, keep_slash=True) if encode_path else path
    header_lines = "".join(
        f"{name}:{' '.join(headers.get(name, '').strip().split())}\n" for name in signed_headers
    )
    return "\n".join(
        [
            method,
            canonical_path or "/",
            canonical_query(query),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, sha256_hex(canonical.encode())])


def signature(secret: str, amz_date: str, scope: str, canonical: str) -> str:
    date, region, service, _ = scope.split("/")
    key = signing_key(secret, date, region, service)
    return hmac_sha256(key, string_to_sign(amz_date, scope, canonical).encode()).hex()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def sign_headers(
    creds: Credentials,
    *,
    method: str,
    host: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    region: str,
    service: str,
    amz_date: str,
) -> dict[str, str]:
    """Return ``headers`` plus Host, X-Amz-Date and Authorization for a JSON request."""
    payload_hash = sha256_hex(body)
    all_headers = {k.lower(): v for k, v in headers.items()}
    all_headers["host"] = host
    all_headers["x-amz-date"] = amz_date
    signed = sorted(all_headers)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    canonical = canonical_request(method, path, [], all_headers, signed, payload_hash)
    sig = signature(creds.secret_access_key, amz_date, scope, canonical)
    out = dict(headers)
    out["Host"] = host
    out["X-Amz-Date"] = amz_date
    out["Authorization"] = (
        f"{ALGORITHM} Credential={creds.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={sig}"
    )
    return out


class PresetSigner:
    """What :func:`sign_headers` returns, for a client whose requests differ only in
    body, date and the headers named ``varying``: the canonical request's fixed parts
    (method, path, the other headers, the signed-header list) are put together once,
    and the signing key is derived once a day. The agent signs every request it sends."""

    def __init__(
        self,
        creds: Credentials,
        *,
        method: str,
        host: str,
        path: str,
        headers: Mapping[str, str],
        varying: Collection[str],
        region: str,
        service: str,
    ) -> None:
        self._creds = creds
        self._region, self._service = region, service
        fixed = {k.lower(): v for k, v in headers.items()}
        fixed["host"] = host
        self._varying = frozenset(name.lower() for name in varying) | {"x-amz-date"}
        names = sorted(set(fixed) | self._varying)
        # Per signed header: its canonical line when fixed, else None (filled per request).
        self._lines = [
            (name, None if name in self._varying else _canonical_header(name, fixed[name]))
            for name in names
        ]
        self._signed = ";".join(names)
        self._head = f"{method}\n{uri_encode(path, keep_slash=True) or '/'}\n\n"
        self._out = {**headers, "Host": host}
        self._day_key = ("", b"")

    def sign(self, body: bytes, amz_date: str, varying: Mapping[str, str]) -> dict[str, str]:
        """The request's headers, signed: the fixed ones, ``varying``, Host, X-Amz-Date
        and Authorization."""
        values = {k.lower(): v for k, v in varying.items()}
        values["x-amz-date"] = amz_date
        if set(values) != self._varying:
            raise ValueError(f"expected the headers {sorted(self._varying)}, got {sorted(values)}")
        header_lines = "".join(
            line if line is not None else _canonical_header(name, values[name])
            for name, line in self._lines
        )
        canonical = f"{self._head}{header_lines}\n{self._signed}\n{sha256_hex(body)}"
        date = amz_date[:8]
        day_key = self._day_key  # one tuple, so that a thread never pairs a date and a key
        if day_key[0] != date:
            secret = self._creds.secret_access_key
            day_key = (date, signing_key(secret, date, self._region, self._service))
            self._day_key = day_key
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        to_sign = string_to_sign(amz_date, scope, canonical)
        out = {**self._out, **varying}
        out["X-Amz-Date"] = amz_date
        out["Authorization"] = (
            f"{ALGORITHM} Credential={self._creds.access_key_id}/{scope}, "
            f"SignedHeaders={self._signed}, "
            f"Signature={hmac_sha256(day_key[1], to_sign.encode()).hex()}"
        )
        return out


def _canonical_header(name: str, value: str) -> str:
    return f"{name}:{' '.join(value.strip().split())}\n"


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key_id: str
    scope: str
    signed_headers: list[str]
    signature: str


class SignatureError(ValueError):
    """The request's signature is missing, malformed or wrong. ``name`` is the AWS code."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def parse_authorization(value: str) -> ParsedAuthorization:
    if not value.startswith(ALGORITHM + " "):
        raise SignatureError("IncompleteSignatureException", "Unsupported authorization scheme")
    parts: dict[str, str] = {}
    for item in value[len(ALGORITHM) + 1 :].split(","):
        key, _, val = item.strip().partition("=")
        parts[key] = val
    try:
        credential = parts["Credential"]
        signed_headers = [name for name in parts["SignedHeaders"].split(";") if name]
        sig = parts["Signature"]
    except KeyError as exc:
        raise SignatureError(
            "IncompleteSignatureException", f"Authorization header lacks {exc.args[0]}"
        ) from None
    access_key_id, _, scope = credential.partition("/")
    if scope.count("/") != 3:
        raise SignatureError("IncompleteSignatureException", "Malformed credential scope")
    return ParsedAuthorization(access_key_id, scope, signed_headers, sig)


def check_signed_headers(auth: ParsedAuthorization, required: Iterable[str]) -> None:
    """Refuse a signature that leaves out a header the request's meaning depends on.

    Whatever is not signed can be changed by anyone replaying the request: an unsigned
    ``x-amz-target`` turns a signed read into a delete.
    """
    missing = sorted(set(required) - set(auth.signed_headers))
    if missing:
        raise SignatureError(
            "IncompleteSignatureException",
            f"SignedHeaders must include {', '.join(missing)}",
        )


def check_scope(
    auth: ParsedAuthorization,
    amz_date: str,
    *,
    services: Collection[str],
    regions: Collection[str],
) -> None:
    """The credential scope must be today's (the request's date), here, for this service."""
    date, region, service, terminator = auth.scope.split("/")
    if date != amz_date[:8] or terminator != "aws4_request":
        raise SignatureError(
            "IncompleteSignatureException",
            "Credential scope must be <X-Amz-Date's date>/<region>/<service>/aws4_request",
        )
    if region not in regions:
        raise SignatureError(
            "IncompleteSignatureException",
            f"Credential should be scoped to a valid region: {', '.join(sorted(regions))}",
        )
    if service not in services:
        raise SignatureError(
            "IncompleteSignatureException",
            f"Credential should be scoped to the correct service: {', '.join(sorted(services))}",
        )


def verify(
    auth: ParsedAuthorization,
    secret: str,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
    amz_date: str,
    encode_path: bool = True,
) -> bool:
    canonical = canonical_request(
        method, path, query, headers, auth.signed_headers, payload_hash, encode_path=encode_path
    )
    expected = signature(secret, amz_date, auth.scope, canonical)
    import hmac  # for its constant-time comparison; only the server verifies

    return hmac.compare_digest(expected, auth.signature)
