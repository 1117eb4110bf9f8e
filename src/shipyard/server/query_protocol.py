"""AWS's Query protocol on ``POST /``: form-encoded requests, XML answers.

Several embedded services speak it (CloudFormation here; the ELBv2 API the same way).
A request is routed by the service in its SigV4 credential scope, authenticated from its
headers before its body is read, then its form is turned into nested members
(``Name.member.N`` → lists, ``Name.entry.N.key/value`` → maps, ``A.B`` → structures)
and given to the operation named by ``Action``. Answers are
``<XResponse><XResult>…</XResult><ResponseMetadata/></XResponse>``; errors
``<ErrorResponse><Error><Type/><Code/><Message/></Error></ErrorResponse>`` with the
model's error code.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from shipyard import sigv4
from shipyard.errors import ApiError
from shipyard.server import auth
from shipyard.server.context import Principal, Services
from shipyard.server.json_body import read_capped

log = logging.getLogger("shipyard.query")

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 2 * 1024 * 1024  # a 1 MB template, form-encoded


@dataclass(frozen=True)
class QueryCall:
    services: Services
    principal: Principal
    params: dict[str, Any]

    def now(self) -> float:
        return self.services.clock()


Result = dict[str, Any]
Operation = Callable[[QueryCall], Result | Awaitable[Result]]


@dataclass(frozen=True)
class QueryService:
    """One service on the Query protocol: its signing name, XML namespace, operations
    and which principals may call it."""

    signing_name: str
    namespace: str
    operations: Mapping[str, Operation]
    callers: frozenset[str]


def is_query_request(scope: Mapping[str, Any]) -> bool:
    if scope["method"] != "POST" or scope["path"] != "/":
        return False
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    return content_type.startswith(FORM_TYPE) and b"x-amz-target" not in headers


def signing_name(headers: Mapping[str, str]) -> str:
    """The service in the request's credential scope (``id/date/region/service/aws4_request``)."""
    try:
        parsed = sigv4.parse_authorization(auth.require_token(dict(headers)))
    except sigv4.SignatureError as exc:
        raise ApiError(exc.name, str(exc), 403) from None
    parts = parsed.scope.split("/")
    return parts[2] if len(parts) == 4 else ""


async def handle(
    request: Request, services: Services, registry: Mapping[str, QueryService]
) -> Response:
    namespace = "https://shipyard.invalid/query/"
    action = ""
    try:
        headers = auth.request_headers(request)
        service = registry.get(signing_name(headers))
        if service is None:
            raise ApiError("InvalidAction", "No service on this endpoint signs with that name")
        namespace = service.namespace
        pending = auth.from_headers(request, headers, services, {service.signing_name}, ("host",))
        body, digest = await read_capped(request, MAX_BODY)
        principal = pending.verify(digest)
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = form.pop("Action", "")
        operation = service.operations.get(action)
        if operation is None:
            raise ApiError("InvalidAction", f"The action {action[:100]!r} is not valid", 400)
        if principal.kind not in service.callers:
            raise ApiError("AccessDenied", f"{principal.kind} keys may not call this API", 403)
        result = operation(QueryCall(services, principal, unflatten(form)))
        if inspect.isawaitable(result):
            result = await result
        return Response(render_result(action, namespace, result), media_type="text/xml")
    except ApiError as exc:
        return error_response(exc, namespace)
    except Exception:
        log.exception("Query API request %s failed", action)
        return error_response(ApiError("InternalFailure", "internal error", 500), namespace)


def unflatten(form: Mapping[str, str]) -> dict[str, Any]:
    """``{"A.member.1.B": "x", "C.entry.1.key": "k", "C.entry.1.value": "v"}`` →
    ``{"A": [{"B": "x"}], "C": {"k": "v"}}``. An empty list arrives as ``Name=``
    (``""``): operations read lists with ``members``."""
    tree: dict[str, Any] = {}
    for key, value in form.items():
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ApiError("MalformedQueryString", f"Conflicting members at {key[:200]!r}")
        node[parts[-1]] = value
    shaped: dict[str, Any] = _shape(tree)
    return shaped


def _shape(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if set(node) == {"member"} and isinstance(node["member"], dict):
        items = node["member"]
        return [_shape(items[k]) for k in sorted(items, key=_position)]
    if set(node) == {"entry"} and isinstance(node["entry"], dict):
        entries = [node["entry"][k] for k in sorted(node["entry"], key=_position)]
        return {e.get("key", ""): _shape(e.get("value")) for e in entries if isinstance(e, dict)}
    return {key: _shape(value) for key, value in node.items()}


def _position(text: str) -> int:
    return int(text) if text.isdigit() else 0


def render_result(action: str, namespace: str, result: Result) -> bytes:
    request_id = str(uuid.uuid4())
    return (
        f'<{action}Response xmlns="{namespace}"><{action}Result>{_xml(result)}</{action}Result>'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def _xml(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(f"<{k}>{_xml(v)}</{k}>" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return "".join(f"<member>{_xml(item)}</member>" for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return escape(str(value))


def timestamp(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def error_response(exc: ApiError, namespace: str) -> Response:
    kind = "Receiver" if exc.status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(exc.name)}</Code><Message>{escape(exc.message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return Response(body, status_code=exc.status, media_type="text/xml")


def members(value: Any) -> list[Any]:
    """A list member as the operation reads it (absent or sent empty: ``[]``)."""
    return value if isinstance(value, list) else []
