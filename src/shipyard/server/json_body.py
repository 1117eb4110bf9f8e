"""The body of a JSON-protocol request: read under a cap while hashed, parsed within bounds.

A body is read only once its sender's headers have authenticated it (see ``auth``), and
never beyond its endpoint's cap, whether the client declared a Content-Length or sent it
chunked. Parsing bounds nesting and numbers: nothing a client sends makes the parser
recurse away or build an integer of thousands of digits.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from starlette.requests import Request

from shipyard.errors import ApiError

MAX_DEPTH = 32  # the model's deepest shapes (a group's load balancer info) need 6
MAX_INTEGER_DIGITS = 19  # anything the model counts fits in a signed 64-bit integer


def too_large(cap: int) -> ApiError:
    return ApiError("RequestEntityTooLargeException", f"The request body exceeds {cap} bytes", 413)


def _serialization(message: str) -> ApiError:
    return ApiError("SerializationException", message)


def body_pending(request: Request) -> bool:
    """Whether the request announced a body (one left unread must close the connection)."""
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


async def read_capped(request: Request, cap: int) -> tuple[bytes, str]:
    """The whole body and its SHA-256 (hex); 413 beyond ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise _serialization("Content-Length must be a number of bytes")
        if int(declared) > cap:  # refused before reading a byte of it
            raise too_large(cap)
    data = bytearray()
    digest = hashlib.sha256()
    async for piece in request.stream():
        if len(data) + len(piece) > cap:
            raise too_large(cap)
        data += piece
        digest.update(piece)
    return bytes(data), digest.hexdigest()


class _Unacceptable(ValueError):
    """A number JSON allows but the API does not take."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Unacceptable(f"integers have at most {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unacceptable("numbers must be finite")
    return value


def _constant(name: str) -> Any:
    raise _Unacceptable(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests, counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def parse_object(body: bytes) -> dict[str, Any]:
    """The request's members; SerializationException for anything but a bounded object."""
    try:
        payload = json.loads(
            body or b"{}", parse_int=_integer, parse_float=_float, parse_constant=_constant
        )
    except _Unacceptable as exc:
        raise _serialization(f"Request body holds an unacceptable number: {exc}") from None
    except RecursionError:
        raise _serialization(f"Request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise _serialization("Request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _serialization("Request body must be a JSON object")
    # Each level opens with a bracket: few brackets bound the depth without a walk
    # (most requests, every agent's; brackets inside strings only count extra).
    brackets = body.count(b"{") + body.count(b"[")
    if brackets > MAX_DEPTH and _depth(payload) > MAX_DEPTH:
        raise _serialization(f"Request body nests deeper than {MAX_DEPTH} levels")
    return payload
