"""Taking hosts out of a load balancer and putting them back (BlockTraffic / AllowTraffic).

A deployment group's ``loadBalancerInfo`` names target groups and Classic ELBs; Shipyard
maps each name to a *backend* of a load balancer it controls, and each instance name to a
*server* in that backend, one to one (``backends_for`` reads the names).

A ``TrafficRouter`` is the small seam every load balancer sits behind:

- ``block``: stop sending new requests to the server (drain), wait until its in-flight
  requests are done or ``drain_timeout`` passes, then take it out (maint);
- ``allow``: put it back (ready) and wait until the balancer's own health check says it is
  up; ``TrafficError`` when that does not happen within ``health_timeout``;
- ``set_weight``: the server's share of new requests (0..256), for weighted shifting;
- ``describe``: what the balancer says about each server of a backend.

Invariants:

- the calls block (the runner calls them from a worker thread) and raise only
  ``TrafficError``, with a message a person can act on;
- ``block`` and ``allow`` are idempotent: blocking a blocked server, or allowing an
  allowed and healthy one, changes nothing;
- adding a load balancer means one module plus one line in ``ROUTERS``; this package
  names no vendor anywhere else. ``memory`` is a real in-process router for tests and
  development, ``haproxy`` drives HAProxy through its runtime API.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from shipyard.traffic.weighted import WeightedRouter

AdminState = Literal["ready", "drain", "maint"]
_Router = TypeVar("_Router")
MAX_WEIGHT = 256
# HAProxy's own rule for proxy and server names; other balancers are no looser in practice.
# It also keeps names from smuggling a second command into a runtime API line.
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


class TrafficError(Exception):
    """A traffic change could not be made or confirmed; the message says why."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    admin: AdminState
    healthy: bool | None  # None when the balancer runs no health check on the server
    sessions: int  # requests the server is still working on (current plus queued)
    weight: int


class TrafficRouter(Protocol):
    def block(
        self,
        backend: str,
        server: str,
        *,
        drain_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Drain the server, wait for sessions == 0 or ``drain_timeout``, then maint."""
        ...

    def allow(self, backend: str, server: str, *, health_timeout: float) -> None:
        """Set the server ready and wait until its health check says it is up."""
        ...

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        """Set the server's weight, 0..256."""
        ...

    def describe(self, backend: str) -> list[ServerState]:
        """Every server of the backend, in the balancer's order."""
        ...


@dataclass(frozen=True)
class RouterConfig:
    kind: str  # a key of ROUTERS: "memory" | "haproxy"
    # haproxy: the runtime API, "unix:/path/to/admin.sock" or "tcp:127.0.0.1:9999";
    # memory: optional seed servers, "backend=server,server;other=server".
    address: str = ""
    timeout: float = 5.0  # for one exchange with the balancer, not for a whole drain


def _lazy(module: str, name: str) -> Callable[[RouterConfig], Any]:
    """``name.from_config`` of ``module``, imported when first used: importing this
    package loads no balancer's code (and no sockets or threads)."""

    def build(config: RouterConfig) -> Any:
        return getattr(importlib.import_module(module), name).from_config(config)

    return build


ROUTERS: dict[str, Callable[[RouterConfig], TrafficRouter]] = {
    "memory": _lazy("shipyard.traffic.memory", "MemoryRouter"),
    "haproxy": _lazy("shipyard.traffic.haproxy", "HAProxyRouter"),
}


def get_router(config: RouterConfig) -> TrafficRouter:
    """Build the router ``config.kind`` names."""
    return _build(ROUTERS, config, "traffic router")


# Weighted routers (traffic/weighted.py) share RouterConfig: the memory one is seeded
# with "route=target,target;...", the HAProxy one is given its runtime API.
WEIGHTED_ROUTERS: dict[str, Callable[[RouterConfig], WeightedRouter]] = {
    "memory": _lazy("shipyard.traffic.weighted_memory", "MemoryWeightedRouter"),
    "haproxy": _lazy("shipyard.traffic.haproxy_weighted", "HAProxyWeightedRouter"),
}


def get_weighted_router(config: RouterConfig) -> WeightedRouter:
    """Build the weighted router ``config.kind`` names."""
    return _build(WEIGHTED_ROUTERS, config, "weighted router")


def _build(
    registry: Mapping[str, Callable[[RouterConfig], _Router]], config: RouterConfig, what: str
) -> _Router:
    factory = registry.get(config.kind)
    if factory is None:
        known = ", ".join(sorted(registry))
        raise TrafficError(f"unknown {what} kind {config.kind!r} (known: {known})")
    return factory(config)


def seed_groups(address: str, shape: str) -> list[tuple[str, list[str]]]:
    """``"a=x,y;b=z"`` as ``[("a", ["x", "y"]), ("b", ["z"])]`` (a memory router's
    seed); ``shape`` names the parts in the error, e.g. ``"backend=server,server"``."""
    groups = []
    for part in filter(None, (p.strip() for p in address.split(";"))):
        name, sep, members = part.partition("=")
        names = [m.strip() for m in members.split(",") if m.strip()]
        if not sep or not names:
            raise TrafficError(f"invalid memory router address part {part!r}: expected {shape!r}")
        groups.append((name.strip(), names))
    return groups


def backends_for(load_balancer_info: Mapping[str, Any] | None) -> list[str]:
    """The backend names a deployment group's ``loadBalancerInfo`` refers to.

    Classic ELB names and target group names, in order, without repeats. The ECS
    ``targetGroupPairInfoList`` is not about hosts and is left out.
    """
    names: list[str] = []
    for key in ("elbInfoList", "targetGroupInfoList"):
        for entry in (load_balancer_info or {}).get(key) or []:
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if isinstance(name, str) and name and name not in names:
                names.append(name)
    return names


def check_name(kind: str, name: str) -> None:
    """Reject a backend or server name no balancer could have."""
    if not _NAME.fullmatch(name):
        raise TrafficError(
            f"invalid {kind} name {name!r}: use letters, digits and '_', '.', ':', '-'"
        )


def check_weight(weight: int) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise TrafficError(f"invalid weight {weight!r}: a whole number from 0 to {MAX_WEIGHT}")


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float,
) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes on ``clock`` (False).

    The condition is always checked at least once, and once more at the deadline.
    """
    deadline = clock() + timeout
    while not condition():
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        sleep(min(interval, remaining))
    return True
