"""The request body of an S3 call, decoded and checked against what the client declared.

``x-amz-content-sha256`` says how the body is covered: a hex SHA-256 (checked once the
body has streamed through), ``UNSIGNED-PAYLOAD``, ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``
(aws-chunked, each chunk signed and chained to the previous signature) or
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` (aws-chunked with a checksum in a trailer: what
botocore sends over HTTPS by default). Checksums (``x-amz-checksum-*`` as a header or a
trailer, ``Content-MD5``) are verified for the algorithms the standard library has: CRC32,
SHA-1 and SHA-256. CRC32C and CRC64NVME are accepted unverified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from shipyard.bundlestore.disk import S3Error

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_sha256_hex(value: str) -> bool:
    return bool(_HEX_SHA256.fullmatch(value))


def is_chunked(payload_hash: str) -> bool:
    return payload_hash in (STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER)


def signature_mismatch() -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        403,
    )


@dataclass
class ChunkChain:
    """The running signature of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD body."""

    signing_key: bytes
    amz_date: str
    scope: str
    previous: str  # starts as the seed: the request's own signature

    def next(self, chunk_sha256: str) -> str:
        lines = ["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, self.previous]
        to_sign = "\n".join([*lines, EMPTY_SHA256, chunk_sha256])
        self.previous = hmac.new(self.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
        return self.previous


class _Crc32:
    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


_VERIFIABLE: dict[str, Any] = {"crc32": _Crc32, "sha1": hashlib.sha1, "sha256": hashlib.sha256}
_CHECKSUM_PREFIX = "x-amz-checksum-"
_NOT_CHECKSUMS = {"x-amz-checksum-algorithm", "x-amz-checksum-mode", "x-amz-checksum-type"}


@dataclass
class VerifiedBody:
    """The request body, decoded and checked against everything the client declared.

    Iterate ``chunks()`` to the end: the last step raises S3Error if any check fails, so
    a consumer that stores the bytes must keep them provisional until then.
    """

    request: Request
    payload_hash: str  # x-amz-content-sha256 as signed
    chain: ChunkChain | None = None  # for STREAMING-AWS4-HMAC-SHA256-PAYLOAD
    checksum: tuple[str, str] | None = None  # (header name, value) once verified
    size: int = 0
    _hashers: dict[str, Any] = field(default_factory=dict)

    async def chunks(self) -> AsyncIterator[bytes]:
        headers = self.request.headers
        declared = {
            name: value.strip()
            for name, value in headers.items()
            if name.startswith(_CHECKSUM_PREFIX) and name not in _NOT_CHECKSUMS
        }
        trailers = [n.strip().lower() for n in headers.get("x-amz-trailer", "").split(",")]
        trailers = [n for n in trailers if n]
        self._start_hashers([*declared, *trailers])
        decoder = AwsChunkedDecoder(self.chain) if is_chunked(self.payload_hash) else None
        async for raw in self.request.stream():
            for piece in decoder.feed(raw) if decoder else [raw]:
                if piece:
                    self.size += len(piece)
                    for hasher in self._hashers.values():
                        hasher.update(piece)
                    yield piece
        if decoder:
            sent = decoder.finish()
            missing = [name for name in trailers if name not in sent]
            if missing:
                raise S3Error("IncompleteBody", f"The trailer {missing[0]} was announced, not sent")
            declared.update((name, sent[name]) for name in trailers)
            decoded_length = headers.get("x-amz-decoded-content-length")
            if decoded_length is not None and decoded_length != str(self.size):
                raise S3Error("IncompleteBody", "The body's length is not the one declared")
        self._check_sha256()
        self._check_md5()
        self._check_checksums(declared)

    def _start_hashers(self, checksum_names: list[str]) -> None:
        for name in checksum_names:
            algorithm = name.removeprefix(_CHECKSUM_PREFIX)
            if algorithm in _VERIFIABLE:
                self._hashers[name] = _VERIFIABLE[algorithm]()
        if is_sha256_hex(self.payload_hash):
            self._hashers["sha256-payload"] = hashlib.sha256()
        if "content-md5" in self.request.headers:
            self._hashers["content-md5"] = hashlib.md5()

    def _check_sha256(self) -> None:
        if "sha256-payload" not in self._hashers:
            return
        computed = self._hashers["sha256-payload"].hexdigest()
        if computed != self.payload_hash:
            raise S3Error(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                400,
                ClientComputedContentSHA256=self.payload_hash,
                S3ComputedContentSHA256=computed,
            )

    def _check_md5(self) -> None:
        if "content-md5" not in self._hashers:
            return
        try:
            expected = base64.b64decode(self.request.headers["content-md5"], validate=True)
        except binascii.Error:
            raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.") from None
        if expected != self._hashers["content-md5"].digest():
            message = "The Content-MD5 you specified did not match what we received."
            raise S3Error("BadDigest", message)

    def _check_checksums(self, declared: dict[str, str]) -> None:
        for name, value in declared.items():
            hasher = self._hashers.get(name)
            if hasher is None:
                continue  # an algorithm we cannot compute: accepted as is
            if base64.b64encode(hasher.digest()).decode() != value:
                algorithm = name.removeprefix(_CHECKSUM_PREFIX).upper()
                message = f"The {algorithm} you specified did not match the calculated checksum."
                raise S3Error("BadDigest", message)
            self.checksum = (name, value)

    async def read_all(self, limit: int) -> bytes:
        """The whole (small) body: XML documents of the bucket and multipart operations."""
        data = bytearray()
        async for piece in self.chunks():
            data += piece
            if len(data) > limit:
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        return bytes(data)


class AwsChunkedDecoder:
    """Incremental decoder of ``Content-Encoding: aws-chunked`` bodies.

    Frames are ``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``, ending with a zero-size
    frame, then optional trailer lines ``name:value``, then an empty line. With a ``chain``
    every frame's signature is checked as soon as its data has been seen.
    """

    MAX_LINE = 4096
    MAX_TRAILERS = 16

    def __init__(self, chain: ChunkChain | None) -> None:
        self._chain = chain
        self._state = "size"  # size -> data -> data-end -> size ... -> trailer -> done
        self._line = bytearray()
        self._left = 0
        self._signature = ""
        self._hash = hashlib.sha256()
        self._trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> Iterator[bytes]:
        pos = 0
        while pos < len(data):
            if self._state == "data":
                take = min(self._left, len(data) - pos)
                piece = data[pos : pos + take]
                pos += take
                self._left -= take
                if self._chain:
                    self._hash.update(piece)
                yield piece
                if self._left == 0:
                    self._check_signature(self._hash.hexdigest())
                    self._state = "data-end"
                continue
            end = data.find(b"\n", pos)
            stop = len(data) if end < 0 else end + 1
            self._line += data[pos:stop]
            pos = stop
            if len(self._line) > self.MAX_LINE:
                raise _malformed("a frame header or trailer line is too long")
            if end >= 0:
                line = bytes(self._line).rstrip(b"\r\n").decode("latin-1")
                self._line.clear()
                self._on_line(line)

    def finish(self) -> dict[str, str]:
        """The trailers, once the whole body has been fed; raises if it stopped early."""
        if self._state not in ("trailer", "done") or self._line:
            raise S3Error("IncompleteBody", "The aws-chunked body ended before its last frame")
        return self._trailers

    def _on_line(self, line: str) -> None:
        if self._state == "data-end":
            if line:
                raise _malformed("frame data is longer than its declared size")
            self._state = "size"
        elif self._state == "size":
            size_text, _, extension = line.partition(";")
            try:
                size = int(size_text.strip(), 16)
            except ValueError:
                size = -1
            if size < 0:
                raise _malformed(f"bad frame size {size_text[:20]!r}")
            name, _, self._signature = extension.partition("=")
            if self._chain and name.strip() != "chunk-signature":
                raise _malformed("a frame lacks its chunk-signature")
            self._hash = hashlib.sha256()
            if size == 0:
                self._check_signature(EMPTY_SHA256)
                self._state = "trailer"
            else:
                self._left, self._state = size, "data"
        elif self._state == "trailer":
            if not line:
                self._state = "done"
                return
            name, sep, value = line.partition(":")
            if not sep or len(self._trailers) >= self.MAX_TRAILERS:
                raise _malformed("bad trailer line")
            self._trailers[name.strip().lower()] = value.strip()
        else:
            raise _malformed("data after the end of the body")

    def _check_signature(self, chunk_sha256: str) -> None:
        if self._chain and not hmac.compare_digest(
            self._chain.next(chunk_sha256), self._signature.strip()
        ):
            raise signature_mismatch()


def _malformed(why: str) -> S3Error:
    return S3Error("InvalidRequest", f"Malformed aws-chunked body: {why}")
