"""AWS's Query protocol (form-encoded requests, XML answers), for any service that speaks it.

Requests are ``POST /`` with ``Action=<Operation>&Version=<date>`` and members encoded
as botocore's ``QuerySerializer`` writes them: structures as ``Parent.Member``, lists as
``Name.member.N`` (an empty list as ``Name=``), maps as ``Name.entry.N.key|value``.
``parse_form`` turns that back into nested dicts and lists; ``QueryParams`` reads them
with the error the API gives for a wrong type. Answers are
``<XResponse><XResult>…</XResult><ResponseMetadata>…`` (an empty ``<XResult/>`` for an
operation without output: botocore needs it) and errors ``<ErrorResponse>`` whose
``<Code>`` is the model's error code.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.responses import Response

from shipyard.errors import ApiError

XML_TYPE = "text/xml"
MAX_INDEX = 10_000  # list positions beyond this are refused (no huge sparse lists)


def parse_form(body: bytes) -> dict[str, Any]:
    """The form's fields as a tree: ``A.member.2.B=x`` → ``{"A": [<1>, {"B": "x"}]}``."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise ApiError("MalformedQueryString", "The request body is not UTF-8") from None
    tree: dict[str, Any] = {}
    for key, value in pairs:
        _insert(tree, key.split("."), value, key)
    parsed: dict[str, Any] = _lists(tree)
    return parsed


def _insert(node: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    head, rest = parts[0], parts[1:]
    if head in ("member", "entry"):
        if not rest or not rest[0].isdigit() or not 1 <= int(rest[0]) <= MAX_INDEX:
            raise ApiError("MalformedQueryString", f"Malformed list member in {key!r}")
        head, rest = f"\0{head}\0{int(rest[0]):08d}", rest[1:]
    if not rest:
        node[head] = value
        return
    child = node.get(head)
    if not isinstance(child, dict):
        child = node[head] = {}
    _insert(child, rest, value, key)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.startswith("\0member\0") for key in node):
        return [_lists(node[key]) for key in sorted(node)]
    if node and all(key.startswith("\0entry\0") for key in node):
        entries = (node[key] for key in sorted(node))
        return {
            e.get("key", ""): _lists(e.get("value", "")) for e in entries if isinstance(e, dict)
        }
    return {key: _lists(value) for key, value in node.items()}


def invalid(message: str) -> ApiError:
    return ApiError("ValidationError", message)


class QueryParams:
    """Typed reads of a parsed form (or of one of its structures)."""

    def __init__(self, tree: Mapping[str, Any], where: str = "") -> None:
        self.tree = tree
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.tree

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.tree.get(key)
        if value is None:
            if required:
                raise invalid(f"{self._name(key)} is required")
            return default
        if not isinstance(value, str):
            raise invalid(f"{self._name(key)} must be a string")
        return value

    def required(self, key: str) -> str:
        value = self.text(key, required=True)
        assert value is not None
        return value

    def number(self, key: str, low: int, high: int) -> int | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            number = int(text)
        except ValueError:
            raise invalid(f"{self._name(key)} must be a number, not {text[:40]!r}") from None
        if not low <= number <= high:
            raise invalid(f"{self._name(key)} must be between {low} and {high}, not {number}")
        return number

    def flag(self, key: str) -> bool | None:
        text = self.text(key)
        if text is None:
            return None
        if text not in ("true", "false"):
            raise invalid(f"{self._name(key)} must be true or false")
        return text == "true"

    def struct(self, key: str) -> QueryParams | None:
        value = self.tree.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise invalid(f"{self._name(key)} must be a structure")
        return QueryParams(value, self._name(key))

    def list_of(self, key: str) -> list[Any] | None:
        """A list member: None when absent, [] when sent empty (``Name=``)."""
        value = self.tree.get(key)
        if value is None:
            return None
        if value == "":
            return []
        if not isinstance(value, list):
            raise invalid(f"{self._name(key)} must be a list")
        return value

    def strings(self, key: str) -> list[str] | None:
        items = self.list_of(key)
        if items is not None and not all(isinstance(item, str) for item in items):
            raise invalid(f"{self._name(key)} must be a list of strings")
        return items

    def structs(self, key: str) -> list[QueryParams] | None:
        items = self.list_of(key)
        if items is None:
            return None
        if not all(isinstance(item, dict) for item in items):
            raise invalid(f"{self._name(key)} must be a list of structures")
        return [
            QueryParams(item, f"{self._name(key)}.member.{n}") for n, item in enumerate(items, 1)
        ]


# ---- answers -------------------------------------------------------------------------


def to_xml(value: Any) -> str:
    """A member's XML: structures by member name, lists as ``<member>`` items."""
    if isinstance(value, Mapping):
        return "".join(f"<{key}>{to_xml(item)}</{key}>" for key, item in value.items())
    if isinstance(value, list | tuple):
        return "".join(f"<member>{to_xml(item)}</member>" for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return escape(str(value))


def result_response(operation: str, namespace: str, result: Mapping[str, Any] | None) -> Response:
    members = to_xml({key: item for key, item in (result or {}).items() if item is not None})
    inner = (
        f"<{operation}Result>{members}</{operation}Result>" if members else f"<{operation}Result/>"
    )
    body = (
        f'<{operation}Response xmlns="{namespace}">{inner}'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    )
    return Response(body, media_type=XML_TYPE)


def error_response(exc: ApiError, namespace: str) -> Response:
    kind = "Receiver" if exc.status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(exc.name)}</Code><Message>{escape(exc.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    response = Response(body, status_code=exc.status, media_type=XML_TYPE)
    response.headers["x-amzn-ErrorType"] = exc.name  # as the JSON APIs do: metrics read it
    return response


def is_query_request(scope: Mapping[str, Any]) -> bool:
    """``POST /`` with a form body and no ``X-Amz-Target`` (the JSON protocols' marker)."""
    if scope.get("method") != "POST" or scope.get("path") != "/":
        return False
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    return content_type == b"application/x-www-form-urlencoded" and b"x-amz-target" not in headers


def signing_service(authorization: str) -> str:
    """The service a SigV4 Authorization header's credential scope names ("" if none):
    which Query-protocol API a request is for (several share ``POST /``)."""
    credential = authorization.partition("Credential=")[2].split(",", 1)[0]
    parts = credential.split("/")
    return parts[3] if len(parts) == 5 else ""
