"""The Lambda API (REST-JSON, 2015-03-31) on the server's endpoint: routing and auth.

Requests are SigV4-signed for the service ``lambda`` with keys Shipyard issued. Admin
keys may call every operation; a function worker's own key only what
``server.auth.authorize`` allows (Invoke); instance keys nothing.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import ApiError
from shipyard.functions import alias_ops, function_ops, invoke_ops
from shipyard.functions.call import LambdaCall, error_response
from shipyard.server import auth
from shipyard.server.auth import authorize
from shipyard.server.context import Services
from shipyard.server.json_body import read_capped
from shipyard.store.quick_reads import QuickReads

log = logging.getLogger("shipyard.functions")

PREFIX = "/2015-03-31/functions"
LAMBDA_SIGNING = frozenset({"lambda"})
# The admin, the server's own deployer key, and function workers (Invoke only, see
# server.auth.authorize); an instance key has no business here.
LAMBDA_CALLERS = frozenset({"admin", "internal", "function"})
# CreateFunction and UpdateFunctionCode carry a base64 zip of up to 50 MB.
MAX_BODY = 70 * 1024 * 1024

Operation = Callable[[LambdaCall], Response | Awaitable[Response]]
_F = PREFIX + r"/(?P<name>[^/]+)"
ROUTES: list[tuple[str, re.Pattern[str], str, Operation]] = [
    # First: by far the most frequent (no other route matches its paths).
    ("POST", re.compile(_F + "/invocations"), "Invoke", invoke_ops.invoke),
    ("POST", re.compile(PREFIX + "/?"), "CreateFunction", function_ops.create_function),
    ("GET", re.compile(PREFIX + "/?"), "ListFunctions", function_ops.list_functions),
    ("GET", re.compile(_F), "GetFunction", function_ops.get_function),
    ("DELETE", re.compile(_F), "DeleteFunction", function_ops.delete_function),
    (
        "GET",
        re.compile(_F + "/configuration"),
        "GetFunctionConfiguration",
        function_ops.get_configuration,
    ),
    (
        "PUT",
        re.compile(_F + "/configuration"),
        "UpdateFunctionConfiguration",
        function_ops.update_configuration,
    ),
    ("PUT", re.compile(_F + "/code"), "UpdateFunctionCode", function_ops.update_code),
    ("POST", re.compile(_F + "/versions"), "PublishVersion", function_ops.publish_version),
    ("GET", re.compile(_F + "/versions"), "ListVersionsByFunction", function_ops.list_versions),
    ("POST", re.compile(_F + "/aliases"), "CreateAlias", alias_ops.create_alias),
    ("GET", re.compile(_F + "/aliases"), "ListAliases", alias_ops.list_aliases),
    ("GET", re.compile(_F + "/aliases/(?P<alias>[^/]+)"), "GetAlias", alias_ops.get_alias),
    ("PUT", re.compile(_F + "/aliases/(?P<alias>[^/]+)"), "UpdateAlias", alias_ops.update_alias),
    ("DELETE", re.compile(_F + "/aliases/(?P<alias>[^/]+)"), "DeleteAlias", alias_ops.delete_alias),
]


def is_lambda_request(scope_path: str) -> bool:
    return scope_path == PREFIX or scope_path.startswith(PREFIX + "/")


# Reads an operation needs, done beside the key lookup (auth.from_headers):
# from the path members and the query, before the body is read.
ReadWithKey = Callable[[dict[str, str], dict[str, str]], Callable[[QuickReads], Any]]
READ_WITH_KEY: dict[str, ReadWithKey] = {"Invoke": invoke_ops.read_candidates}


async def handle(request: Request, services: Services) -> Response:
    try:
        headers = auth.request_headers(request)
        query = dict(request.query_params) if request.scope.get("query_string") else {}
        routed = _route(request)  # refused only once the caller is known
        read = None
        if not isinstance(routed, ApiError) and routed[0] in READ_WITH_KEY:
            read = READ_WITH_KEY[routed[0]](routed[2], query)
        pending = auth.from_headers(
            request, headers, services, LAMBDA_SIGNING, ("host",), also=read
        )
        body, digest = await _read_body(request)
        principal = pending.verify(digest)
        if isinstance(routed, ApiError):
            raise routed
        name, operation, params = routed
        if principal.kind not in LAMBDA_CALLERS:
            raise ApiError(
                "AccessDeniedException", f"{principal.kind} keys may not call the Lambda API", 403
            )
        authorize(principal, "lambda", name)
        call = LambdaCall(services, principal, params, query, headers, body, pending.prefetched)
        result = operation(call)
        return await result if inspect.isawaitable(result) else result
    except ApiError as exc:
        return error_response(exc)
    except Exception:
        log.exception("Lambda API request failed")
        return error_response(ApiError("ServiceException", "internal error", 500))


def _route(request: Request) -> tuple[str, Operation, dict[str, str]] | ApiError:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    for method, pattern, name, operation in ROUTES:
        found = pattern.fullmatch(path) if method == request.method else None
        if found:
            return name, operation, {k: unquote(v) for k, v in found.groupdict().items()}
    return ApiError("UnknownOperationException", f"Unknown operation {request.method} {path}", 404)


async def _read_body(request: Request) -> tuple[bytes, str]:
    """The body and its SHA-256, under Lambda's own limit and error name."""
    try:
        return await read_capped(request, MAX_BODY)
    except ApiError as exc:
        if exc.status == 413:
            raise _too_large() from None
        raise


def _too_large() -> ApiError:
    return ApiError(
        "RequestTooLargeException", f"Request must be smaller than {MAX_BODY} bytes", 413
    )
