"""HAProxy as a weighted router, driven through its runtime API.

A route is an HAProxy backend with a dynamic balancing algorithm (``balance
roundrobin``); its targets are the backend's servers, and a target's percent is the
server's weight (0-100, HAProxy allows 0-256). The route's test route, when it has one,
is a second backend named ``<route>-test`` with the same servers, of which at most one
is enabled (declare them ``disabled`` in haproxy.cfg):

    backend live
        balance roundrobin
        server blue 10.0.0.1:8080 weight 100
        server green 10.0.0.2:8080 weight 0
    backend live-test
        server blue 10.0.0.1:8080 disabled
        server green 10.0.0.2:8080 disabled

Weights change with ``set server <route>/<target> weight <n>``, all of a call's changes
on one runtime API line, raises before cuts so that the backend never has every weight
at 0 in between. ``verify`` reads the servers' state back: a server that is in
maintenance, draining or failing its health check takes no traffic, whatever its weight.
"""

from __future__ import annotations

from collections.abc import Mapping

from shipyard.traffic import RouterConfig, ServerState, TrafficError
from shipyard.traffic.haproxy import HAProxyRouter, RuntimeApi
from shipyard.traffic.weighted import (
    Verified,
    check_test_target,
    check_weights,
    same_split,
    shares,
)

TEST_SUFFIX = "-test"


class HAProxyWeightedRouter:
    def __init__(self, api: RuntimeApi) -> None:
        self._api = api
        self._backends = HAProxyRouter(api)  # reads a backend's servers and their state

    @classmethod
    def from_config(cls, config: RouterConfig) -> HAProxyWeightedRouter:
        return cls(RuntimeApi(config.address, config.timeout))

    def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        now = {s.server: s.weight for s in self._backends.describe(route)}
        wanted = check_weights(route, weights, list(now))
        changed = [t for t in wanted if wanted[t] != now[t]]
        changed.sort(key=lambda target: wanted[target] < now[target])  # raises first
        self._run([f"set server {route}/{target} weight {wanted[target]}" for target in changed])

    def weights(self, route: str) -> dict[str, int]:
        return shares({s.server: s.weight for s in self._backends.describe(route)})

    def verify(self, route: str, weights: Mapping[str, int]) -> Verified:
        servers = self._backends.describe(route)
        expected = check_weights(route, weights, [s.server for s in servers])
        effective = {s.server: s.weight if _takes_traffic(s) else 0 for s in servers}
        return Verified.YES if same_split(effective, expected) else Verified.NO

    def set_test_route(self, route: str, target: str | None) -> None:
        backend = self._test_backend(route)
        servers = self._backends.describe(backend)
        check_test_target(route, target, [s.server for s in servers])
        commands = [] if target is None else [f"set server {backend}/{target} state ready"]
        commands += [
            f"set server {backend}/{s.server} state maint"
            for s in servers
            if s.server != target and s.admin != "maint"
        ]
        self._run(commands)

    def test_target(self, route: str) -> str | None:
        backend = self._test_backend(route)
        enabled = [s.server for s in self._backends.describe(backend) if s.admin == "ready"]
        if len(enabled) > 1:
            raise TrafficError(
                f"the test route of {route!r} (backend {backend!r}) sends traffic to "
                f"several targets: {', '.join(enabled)}; it should have at most one"
            )
        return enabled[0] if enabled else None

    # -- internals -----------------------------------------------------------------------

    def _test_backend(self, route: str) -> str:
        self._backends.describe(route)  # a clear error for an unknown route
        backend = route + TEST_SUFFIX
        listed = self._api.run("show backend").splitlines()
        if backend not in {line.strip() for line in listed if not line.startswith("#")}:
            raise TrafficError(f"route {route!r} has no test route (no backend {backend!r})")
        return backend

    def _run(self, commands: list[str]) -> None:
        """Run commands that answer nothing when they succeed, on one line."""
        if not commands:
            return
        answer = self._api.run("; ".join(commands)).strip()
        if answer:
            raise TrafficError(f"HAProxy refused {'; '.join(commands)!r}: {answer}")


def _takes_traffic(server: ServerState) -> bool:
    return server.admin == "ready" and server.healthy is not False
