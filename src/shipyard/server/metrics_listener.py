"""``/metrics`` on its own address (``metrics_address``), a worker of the main server.

Unauthenticated: the operator keeps it private by where it listens (a loopback or
management interface). It runs in the main server's event loop; the main server owns
the process's signals.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import ConfigError
from shipyard.server.context import Services
from shipyard.server.probes import metrics_response


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"metrics_address must be host:port; got {address!r}")
    return host.strip("[]"), int(port)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the main server handles SIGINT/SIGTERM and stops its workers


class MetricsListener:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.host, self.port = parse_address(services.config.metrics_address)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _app(self) -> Starlette:
        def metrics(_request: Request) -> Response:
            return metrics_response(self.services)

        return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])

    def start(self) -> None:
        config = uvicorn.Config(
            self._app(), host=self.host, port=self.port, log_level="warning", access_log=False
        )
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve())

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
