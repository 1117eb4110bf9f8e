"""Shared request validation: names, required members, enums, pagination tokens.

Every helper raises ``ApiError`` with the model's exception name, so handlers read
as a list of rules.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from shipyard.errors import ApiError

NAME_RE = re.compile(r"[A-Za-z0-9+=,.@_-]{1,100}")
T = TypeVar("T")


def required(body: dict[str, Any], member: str, exception: str) -> Any:
    """The member's value, or ``exception`` when it is absent, null or empty."""
    value = body.get(member)
    if value is None or value == "" or value == [] or value == {}:
        raise ApiError(exception, f"{member} is required")
    return value


def name(value: Any, exception: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ApiError(
            exception,
            f"{what} must be 1-100 characters from [A-Za-z0-9+=,.@_-]: {value!r}",
        )
    return value


def enum(value: Any, allowed: Iterable[str], exception: str, what: str) -> str:
    choices = list(allowed)
    if value not in choices:
        raise ApiError(exception, f"{what} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def boolean(value: Any, exception: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise ApiError(exception, f"{what} must be a boolean")
    return value


def string_list(value: Any, exception: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(exception, f"{what} must be a list of strings")
    return list(value)


def batch(value: Any, maximum: int, exception: str, limit_exception: str, what: str) -> list[str]:
    items = string_list(value, exception, what)
    if len(items) > maximum:
        raise ApiError(limit_exception, f"at most {maximum} {what} per call; got {len(items)}")
    return items


PAGE_SIZE = 100


def paginate(
    items: Sequence[T], token: Any, page_size: int = PAGE_SIZE
) -> tuple[list[T], str | None]:
    """Slice ``items`` by an opaque ``nextToken``; returns the page and the next token."""
    start = 0
    if token is not None:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["offset"])
        except (ValueError, KeyError, TypeError):
            raise ApiError("InvalidNextTokenException", "The next token is not valid") from None
        if start < 0 or start > len(items):
            raise ApiError("InvalidNextTokenException", "The next token is not valid")
    end = start + page_size
    next_token = None
    if end < len(items):
        next_token = base64.urlsafe_b64encode(json.dumps({"offset": end}).encode()).decode()
    return list(items[start:end]), next_token
