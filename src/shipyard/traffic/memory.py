"""An in-process traffic router: the same behaviour as a real balancer, with no network.

Used by tests and by development setups. Tests play the part of the traffic and of the
health checks with ``set_sessions`` and ``set_health``; ``block`` and ``allow`` wait on
those exactly as the HAProxy router waits on HAProxy. Waiting goes through the ``sleep``
and ``clock`` given to the constructor, so a test can run a 30-second drain on a fake
clock in no time (``block`` takes its clock per call, as the protocol says).

A server added without a health check reports ``healthy=None``; a checked server that is
blocked keeps the health it had, like a balancer that stops checking it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.traffic import (
    AdminState,
    RouterConfig,
    ServerState,
    TrafficError,
    check_name,
    check_weight,
    seed_groups,
    wait_until,
)

POLL_INTERVAL = 0.05


@dataclass
class _Server:
    admin: AdminState
    healthy: bool | None
    sessions: int
    weight: int


class MemoryRouter:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval
        self._backends: dict[str, dict[str, _Server]] = {}
        # block/allow wait in one thread while tests (or other callers) change state in
        # another; every read and write of a server goes through this lock.
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: RouterConfig) -> MemoryRouter:
        """A router seeded from ``config.address``: ``"web=s1,s2;api=a1"`` (may be empty)."""
        router = cls()
        for backend, servers in seed_groups(config.address, "backend=server,server"):
            for name in servers:
                router.add_server(backend, name)
        return router

    # -- what tests and development setups use to play the outside world ----------------

    def add_server(
        self, backend: str, server: str, *, healthy: bool | None = None, weight: int = 1
    ) -> None:
        """Add a ready server; ``healthy=None`` means it has no health check."""
        check_name("backend", backend)
        check_name("server", server)
        check_weight(weight)
        with self._lock:
            self._backends.setdefault(backend, {})[server] = _Server(
                admin="ready", healthy=healthy, sessions=0, weight=weight
            )

    def set_sessions(self, backend: str, server: str, sessions: int) -> None:
        """Say how many requests the server is working on right now."""
        with self._lock:
            self._find(backend, server).sessions = sessions

    def set_health(self, backend: str, server: str, healthy: bool | None) -> None:
        """Say what the server's health check reports (None: it has none)."""
        with self._lock:
            self._find(backend, server).healthy = healthy

    # -- TrafficRouter -------------------------------------------------------------------

    def block(
        self,
        backend: str,
        server: str,
        *,
        drain_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        with self._lock:
            entry = self._find(backend, server)
            if entry.admin == "maint":
                return
            entry.admin = "drain"
        wait_until(
            lambda: self._state(backend, server).sessions == 0,
            timeout=drain_timeout,
            clock=clock,
            sleep=self._sleep,
            interval=self._poll_interval,
        )
        with self._lock:
            self._find(backend, server).admin = "maint"

    def allow(self, backend: str, server: str, *, health_timeout: float) -> None:
        with self._lock:
            self._find(backend, server).admin = "ready"
        up = wait_until(
            lambda: self._state(backend, server).healthy is not False,
            timeout=health_timeout,
            clock=self._clock,
            sleep=self._sleep,
            interval=self._poll_interval,
        )
        if not up:
            raise TrafficError(
                f"server {server!r} in backend {backend!r} is not healthy "
                f"{health_timeout:g} s after it was allowed traffic"
            )

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        check_weight(weight)
        with self._lock:
            self._find(backend, server).weight = weight

    def describe(self, backend: str) -> list[ServerState]:
        with self._lock:
            servers = self._servers(backend)
            return [self._snapshot(backend, name, entry) for name, entry in servers.items()]

    # -- internals -----------------------------------------------------------------------

    def _state(self, backend: str, server: str) -> ServerState:
        with self._lock:
            return self._snapshot(backend, server, self._find(backend, server))

    @staticmethod
    def _snapshot(backend: str, server: str, entry: _Server) -> ServerState:
        return ServerState(
            backend=backend,
            server=server,
            admin=entry.admin,
            healthy=entry.healthy,
            sessions=entry.sessions,
            weight=entry.weight,
        )

    def _servers(self, backend: str) -> dict[str, _Server]:
        check_name("backend", backend)
        servers = self._backends.get(backend)
        if servers is None:
            raise TrafficError(f"unknown backend {backend!r}")
        return servers

    def _find(self, backend: str, server: str) -> _Server:
        check_name("server", server)
        entry = self._servers(backend).get(server)
        if entry is None:
            raise TrafficError(f"unknown server {server!r} in backend {backend!r}")
        return entry
