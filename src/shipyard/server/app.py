"""The ASGI app: routing, authentication and the one error renderer.

A JSON request (``POST /``) is authenticated from its headers before its body is read,
then its body is read under the endpoint's cap and checked against the signature
(``auth``, ``json_body``). Every error, expected or not, leaves in the AWS JSON error
shape; an unexpected one as ``InternalFailure``, its traceback only in the server log.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.bundlestore.api import handle as s3_handle
from shipyard.bundlestore.api import s3_routes
from shipyard.config import ServerConfig
from shipyard.console.routes import browser_at_root, console_routes
from shipyard.containers.ecs import api as ecs_api
from shipyard.containers.elbv2 import api as elbv2_api
from shipyard.errors import ApiError, DomainError
from shipyard.functions import api as lambda_api
from shipyard.server import auth, dispatch, query_protocol
from shipyard.server.agent_protocol import AGENT_OPERATIONS
from shipyard.server.context import Call, Handler, Services
from shipyard.server.json_body import body_pending, parse_object, read_capped
from shipyard.server.operations import API_OPERATIONS
from shipyard.server.probes import probe_routes
from shipyard.server.query_protocol import is_query_request, signing_service
from shipyard.server.tracked_receive import TrackedReceive
from shipyard.server.wire import to_api_error
from shipyard.stacks.api import CLOUDFORMATION

log = logging.getLogger("shipyard.server")

API_PREFIX = "CodeDeploy_20141006."
AGENT_PREFIX = "CodeDeployCommandService_v20141006."
UNAVAILABLE = "ServiceUnavailableException"  # HTTP 503: retry (the database is away)
# The stock agent with ``:enable_auth_policy: true``: the "secure" command service
# (API version 2019-11-11, signing name codedeploy-commands-secure), same operations.
SECURE_AGENT_PREFIX = "CodeDeployCommandService."
JSON_TYPE = "application/x-amz-json-1.1"
# The services on the Query protocol, by signing name (form-encoded ``POST /``).
QUERY_SERVICES = {CLOUDFORMATION.signing_name: CLOUDFORMATION}


class JsonAnswer(Response):
    """A JSON protocol answer, its headers built as the raw list ASGI sends: every
    agent request ends in one, and Starlette's general constructor (media type
    negotiation, header normalisation) cost about a third of the answer's time."""

    media_type = JSON_TYPE

    def __init__(
        self, payload: dict[str, Any], status: int, request_id: str, error_type: str = ""
    ) -> None:
        self.status_code = status
        self.background = None
        self.body = json.dumps(payload, separators=(",", ":")).encode()
        self.raw_headers = [
            (b"content-length", str(len(self.body)).encode()),
            (b"content-type", _JSON_TYPE_BYTES),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        if error_type:  # as AWS sends it; metrics read it
            self.raw_headers.append((b"x-amzn-errortype", error_type.encode()))


_JSON_TYPE_BYTES = JSON_TYPE.encode()


def new_request_id() -> str:
    """A random id in UUID form (``str(uuid.uuid4())`` costs five times as much)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _json_response(
    payload: dict[str, Any], status: int = 200, request_id: str | None = None
) -> Response:
    return JsonAnswer(payload, status, request_id or new_request_id())


def error_response(exc: ApiError) -> Response:
    payload = {"__type": exc.name, "message": exc.message}
    return JsonAnswer(payload, exc.status, new_request_id(), exc.name)


@dataclass(frozen=True)
class _Endpoint:
    """What an ``X-Amz-Target`` names: a handler, its signing names and its body cap."""

    handler: Handler
    signing_names: frozenset[str]
    body_cap: int
    service: str  # "codedeploy" (the API), "codedeploy-commands" (agents) or "ecs"
    operation: str


def _endpoint(target: str, config: ServerConfig) -> _Endpoint:
    if target.startswith(API_PREFIX):
        table, name = API_OPERATIONS, target.removeprefix(API_PREFIX)
        names, cap, service = auth.API_SIGNING_NAMES, config.max_api_body_bytes, "codedeploy"
    elif target.startswith(AGENT_PREFIX):
        table, name = AGENT_OPERATIONS, target.removeprefix(AGENT_PREFIX)
        names, cap = auth.AGENT_SIGNING_NAMES, config.max_agent_body_bytes
        service = "codedeploy-commands"
    elif target.startswith(SECURE_AGENT_PREFIX):
        table, name = AGENT_OPERATIONS, target.removeprefix(SECURE_AGENT_PREFIX)
        names, cap = auth.AGENT_SIGNING_NAMES, config.max_agent_body_bytes
        service = "codedeploy-commands"
    elif target.startswith(ecs_api.PREFIX):
        table, name = ecs_api.OPERATIONS, target.removeprefix(ecs_api.PREFIX)
        names, cap, service = ecs_api.SIGNING_NAMES, config.max_api_body_bytes, "ecs"
    else:
        raise ApiError("UnknownOperationException", f"Unknown target {target[:200]!r}")
    handler = table.get(name)
    if handler is None:
        raise ApiError("UnknownOperationException", f"Unknown operation {name[:200]!r}")
    return _Endpoint(handler, names, cap, service, name)


async def _call(request: Request, services: Services) -> Response:
    """Authenticate from the headers, then read the body under its cap, then run."""
    headers = auth.request_headers(request)
    auth.require_token(headers)
    endpoint = _endpoint(headers.get("x-amz-target", ""), services.config)
    pending = auth.from_headers(request, headers, services, endpoint.signing_names)
    body, digest = await read_capped(request, endpoint.body_cap)
    principal = pending.verify(digest)
    if endpoint.service == "codedeploy":  # the API: roles and the audit (server/dispatch.py)
        parsed = parse_object(body)
        return _json_response(
            await dispatch.run_operation(services, principal, endpoint.operation, parsed)
        )
    if endpoint.service == "ecs":  # roles and the audit as the ECS API applies them
        parsed = parse_object(body)
        return _json_response(await ecs_api.run(services, principal, endpoint.operation, parsed))
    auth.authorize(principal, endpoint.service, endpoint.operation)
    result = endpoint.handler(Call(services, principal, parse_object(body), headers))
    if inspect.isawaitable(result):
        result = await result
    return _json_response(result)


def _operation(target: str) -> str:
    """The operation a target names, for metrics: only names that exist (bounded)."""
    name = target.rpartition(".")[2]
    known = name in API_OPERATIONS or name in AGENT_OPERATIONS or name in ecs_api.OPERATIONS
    return name if known else "unknown"


async def _json_api(request: Request, services: Services) -> Response:
    started = time.perf_counter()
    response = await _answer(request, services)
    result = response.headers.get("x-amzn-ErrorType") or (
        "ok" if response.status_code < 400 else "InternalFailure"
    )
    operation = _operation(request.headers.get("x-amz-target", ""))
    services.metrics.api_request(operation, result, time.perf_counter() - started)
    return response


async def _answer(request: Request, services: Services) -> Response:
    receive = TrackedReceive(request.receive)
    request = Request(request.scope, receive)
    try:
        return await _call(request, services)
    except ApiError as exc:
        response = error_response(exc)
    except DomainError as exc:
        response = error_response(to_api_error(exc))
    except ClientDisconnect:  # nobody is left to read an answer
        return Response(status_code=400, headers={"x-amzn-ErrorType": "ClientDisconnect"})
    except (OperationalError, InterfaceError) as exc:
        # The database is out of reach (restarting, failing over): nothing was done,
        # and the same request will work again. 503 tells clients and agents to retry.
        log.warning("database unreachable (%s): answered 503", type(exc.orig).__name__)
        response = error_response(ApiError(UNAVAILABLE, "The database is unreachable", 503))
    except Exception:
        request_id = new_request_id()
        log.exception("internal error (request %s)", request_id)
        message = f"An internal error occurred; the server log has details (request {request_id})"
        failure = {"__type": "InternalFailure", "message": message}
        response = JsonAnswer(failure, 500, request_id, "InternalFailure")
    if not receive.body_done and body_pending(request):
        # The rest of the body was never read: where a next request would begin is unknown.
        response.headers["connection"] = "close"
    return response


async def _query_api(request: Request, services: Services) -> Response:
    """The Query-protocol APIs (form bodies on ``POST /``), told apart by the service
    their signature is for."""
    service = signing_service(request.headers.get("authorization", ""))
    if service == elbv2_api.SIGNING_NAME or not service:
        return await elbv2_api.handle(request, services)
    if service in QUERY_SERVICES:
        return await query_protocol.handle(request, services, QUERY_SERVICES)
    return error_response(
        ApiError("UnknownOperationException", f"Unknown service {service[:64]!r}")
    )


def create_app(services: Services) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        services.runner.start()
        for worker in services.workers:
            worker.start()
        try:
            yield
        finally:
            for worker in reversed(services.workers):
                await worker.stop()
            await services.runner.stop()

    # The S3 bundle store catches every path but the JSON API's.
    routes = [*probe_routes(services), *console_routes(services), *s3_routes(services)]
    rest = Starlette(routes=routes, lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # ``POST /`` (the JSON API and the agent protocol, every agent request) goes
        # straight to its handler: _json_api renders every error itself, so
        # Starlette's routing and middleware layers would only add cost per request.
        if scope["type"] == "http" and is_query_request(scope):
            response = await _query_api(Request(scope, receive), services)
            await response(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            response = await _json_api(Request(scope, receive), services)
            await response(scope, receive, send)
        elif scope["type"] == "http" and lambda_api.is_lambda_request(scope["path"]):
            response = await lambda_api.handle(Request(scope, receive), services)
            await response(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "GET" and _object_path(scope["path"]):
            # A bundle download (every agent, every deployment): the S3 handler renders
            # its errors itself, so it needs no more of Starlette than the POST / path.
            response = await s3_handle(Request(scope, receive), services)
            await response(scope, receive, send)
        elif (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == "/"
            and browser_at_root(Request(scope))
        ):
            await RedirectResponse("/console", 302)(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app


def _object_path(path: str) -> bool:
    """``/<bucket>/<key>``, path-style: once the Lambda API's paths are out of the way,
    no other GET route of the app has two segments outside ``/console/``."""
    return path.count("/") >= 2 and not path.startswith("/console/")
