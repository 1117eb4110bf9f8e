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
from starlette.routing import Route

from shipyard.errors import ApiError
from shipyard.server.agent_protocol import AGENT_OPERATIONS
from shipyard.server.auth import authenticate
from shipyard.server.context import Call, Handler, Principal, Services
from shipyard.server.operations import API_OPERATIONS
from shipyard.server.s3 import s3_routes

log = logging.getLogger("shipyard.server")

API_PREFIX = "CodeDeploy_20141006."
AGENT_PREFIX = "CodeDeployCommandService_v20141006."
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
        if principal.kind != "admin":
            raise ApiError(
                "AccessDeniedException", "Instance credentials may not call the API", 403
            )
    elif target.startswith(AGENT_PREFIX):
        table, name = AGENT_OPERATIONS, target.removeprefix(AGENT_PREFIX)
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
    except Exception:
        log.exception("internal error")
        return _json_response({"__type": "ServerException", "message": "internal error"}, 500)


def create_app(services: Services) -> Starlette:
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

    async def root_post(request: Request) -> Response:
        return await _json_api(request, services)

    routes = [Route("/", root_post, methods=["POST"])]
    routes += s3_routes(services)  # the S3 bundle store catches every other path: keep it last
    return Starlette(routes=routes, lifespan=lifespan)
