"""The ASGI app: routing, authentication and the one error renderer."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.bundlestore.api import s3_routes
from shipyard.errors import ApiError, DomainError
from shipyard.functions import api as lambda_api
from shipyard.server.agent_protocol import AGENT_OPERATIONS
from shipyard.server.auth import authenticate, authorize
from shipyard.server.context import Call, Handler, Principal, Services
from shipyard.server.operations import API_OPERATIONS
from shipyard.server.wire import to_api_error

log = logging.getLogger("shipyard.server")

API_PREFIX = "CodeDeploy_20141006."
AGENT_PREFIX = "CodeDeployCommandService_v20141006."
# The stock agent with ``:enable_auth_policy: true``: the "secure" command service
# (API version 2019-11-11, signing name codedeploy-commands-secure), same operations.
SECURE_AGENT_PREFIX = "CodeDeployCommandService."
JSON_TYPE = "application/x-amz-json-1.1"


def _json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status_code=status,
        media_type=JSON_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def error_response(exc: ApiError) -> Response:
    return _json_response({"__type": exc.name, "message": exc.message}, exc.status)


def _resolve(target: str, principal: Principal) -> Handler:
    if target.startswith(API_PREFIX):
        table, name = API_OPERATIONS, target.removeprefix(API_PREFIX)
        authorize(principal, "codedeploy", name)
        if principal.kind not in ("admin", "function"):
            raise ApiError(
                "AccessDeniedException", "Instance credentials may not call the API", 403
            )
    elif target.startswith(AGENT_PREFIX):
        table, name = AGENT_OPERATIONS, target.removeprefix(AGENT_PREFIX)
        authorize(principal, "codedeploy-commands", name)
    elif target.startswith(SECURE_AGENT_PREFIX):
        table, name = AGENT_OPERATIONS, target.removeprefix(SECURE_AGENT_PREFIX)
        authorize(principal, "codedeploy-commands", name)
    else:
        raise ApiError("UnknownOperationException", f"Unknown target {target!r}")
    handler = table.get(name)
    if handler is None:
        raise ApiError("UnknownOperationException", f"Unknown operation {name!r}")
    return handler


async def _json_api(request: Request, services: Services) -> Response:
    body = await request.body()
    try:
        principal = authenticate(request, body, services)
        handler = _resolve(request.headers.get("x-amz-target", ""), principal)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise ApiError("SerializationException", "Request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise ApiError("SerializationException", "Request body must be a JSON object")
        result = handler(Call(services, principal, payload))
        if inspect.isawaitable(result):
            result = await result
        return _json_response(result)
    except ApiError as exc:
        return error_response(exc)
    except DomainError as exc:
        return error_response(to_api_error(exc))
    except Exception:
        log.exception("internal error")
        return _json_response({"__type": "ServerException", "message": "internal error"}, 500)


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
    rest = Starlette(routes=s3_routes(services), lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # ``POST /`` (the JSON API and the agent protocol, every agent request) goes
        # straight to its handler: _json_api renders every error itself, so
        # Starlette's routing and middleware layers would only add cost per request.
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            response = await _json_api(Request(scope, receive), services)
            await response(scope, receive, send)
        elif scope["type"] == "http" and lambda_api.is_lambda_request(scope["path"]):
            response = await lambda_api.handle(Request(scope, receive), services)
            await response(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return app
