"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics``.

``/healthz`` says the process answers; ``/readyz`` that it can do its work: the
database answers, its schema is at this version's migration, and the background workers
(the runner's sweeper, the alarm watcher, the trigger deliverer, ...) are running. Both
are unauthenticated and do no more than one short query.

``/metrics`` is the Prometheus text format. Who may read it is the operator's choice
(``ServerConfig``): with ``metrics_address`` set it is served only on that separate
listener, without authentication (bind it to a private interface); otherwise on the main
port, to a request carrying ``Authorization: Bearer <metrics_token>`` (when that setting
is given) or signed with SigV4 (signing name ``s3``) by a key allowed to read.
"""

from __future__ import annotations

import hmac
import logging
from typing import Protocol, runtime_checkable

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shipyard.bundlestore import auth as s3_auth
from shipyard.bundlestore.disk import S3Error
from shipyard.server import permissions
from shipyard.server.context import Services
from shipyard.store import migrations

log = logging.getLogger("shipyard.server")


@runtime_checkable
class Alive(Protocol):
    """A worker that can tell whether its background task still runs."""

    def alive(self) -> bool: ...


def not_ready(services: Services) -> list[str]:
    """Why the server is not ready; empty when it is."""
    reasons: list[str] = []
    try:
        with services.db.tx() as conn:
            version = migrations.current_version(conn)
        if version != len(migrations.MIGRATIONS):
            reasons.append(
                f"database schema at version {version}, not {len(migrations.MIGRATIONS)}"
            )
    except Exception as exc:  # whatever the driver raises: the database does not answer
        reasons.append(f"database unreachable: {type(exc).__name__}")
    if not services.runner.alive():
        reasons.append("the runner's sweeper is not running")
    for worker in services.workers:
        if isinstance(worker, Alive) and not worker.alive():
            reasons.append(f"{type(worker).__name__} is not running")
    return reasons


def metrics_response(services: Services) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def may_read_metrics(request: Request, services: Services) -> bool:
    token = services.config.metrics_token
    given = request.headers.get("authorization", "")
    if token and given.startswith("Bearer "):
        return hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode())
    if not given.startswith("AWS4-HMAC-SHA256"):
        return False
    try:
        principal = s3_auth.authenticate(request, services).principal
    except S3Error:
        return False
    return permissions.allowed(principal, permissions.READ)


def probe_routes(services: Services) -> list[Route]:
    def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    def readyz(_request: Request) -> Response:  # sync: Starlette runs it in a thread
        reasons = not_ready(services)
        if reasons:
            return JSONResponse({"ready": False, "reasons": reasons}, status_code=503)
        return JSONResponse({"ready": True})

    def metrics(request: Request) -> Response:
        if services.config.metrics_address:
            return PlainTextResponse("metrics are served on their own address\n", 404)
        if not may_read_metrics(request, services):
            return PlainTextResponse(
                "metrics need a bearer token or a signed request\n",
                401,
                headers={"www-authenticate": "Bearer"},
            )
        return metrics_response(services)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
