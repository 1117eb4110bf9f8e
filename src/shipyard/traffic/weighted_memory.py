"""An in-process weighted router: routes, their targets' weights and test routes, with
no network. Used by tests and by development setups.

A route is added with its targets (``add_route``, or ``from_config``'s
``"route=original,replacement;other=a,b"``); its first target starts with all the
traffic and its test route sends traffic nowhere. Built with ``verifiable=False`` it
plays a balancer that cannot read its weights back: ``verify`` answers UNKNOWN.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shipyard.traffic import RouterConfig, TrafficError, check_name, seed_groups
from shipyard.traffic.weighted import (
    FULL,
    Verified,
    check_test_target,
    check_weights,
    same_split,
)


@dataclass
class _Route:
    weights: dict[str, int]  # every target, in the order they were added
    has_test_route: bool
    test_target: str | None = None


class MemoryWeightedRouter:
    def __init__(self, *, verifiable: bool = True) -> None:
        self._verifiable = verifiable
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()  # the runner calls from worker threads

    @classmethod
    def from_config(cls, config: RouterConfig) -> MemoryWeightedRouter:
        router = cls()
        for route, targets in seed_groups(config.address, "route=target,target"):
            router.add_route(route, targets)
        return router

    def add_route(self, route: str, targets: Sequence[str], *, test_route: bool = True) -> None:
        """A route over ``targets`` (the first gets all traffic), with a test route or not."""
        check_name("route", route)
        for target in targets:
            check_name("target", target)
        if not targets or len(set(targets)) != len(targets):
            raise TrafficError(f"route {route!r} needs distinct targets; got {list(targets)}")
        weights = {target: 0 for target in targets}
        weights[targets[0]] = FULL
        with self._lock:
            self._routes[route] = _Route(weights, test_route)

    # -- WeightedRouter ------------------------------------------------------------------

    def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        with self._lock:
            entry = self._find(route)
            entry.weights = check_weights(route, weights, list(entry.weights))

    def weights(self, route: str) -> dict[str, int]:
        with self._lock:
            return dict(self._find(route).weights)

    def verify(self, route: str, weights: Mapping[str, int]) -> Verified:
        with self._lock:
            entry = self._find(route)
            expected = check_weights(route, weights, list(entry.weights))
            if not self._verifiable:
                return Verified.UNKNOWN
            return Verified.YES if same_split(entry.weights, expected) else Verified.NO

    def set_test_route(self, route: str, target: str | None) -> None:
        with self._lock:
            entry = self._test_route(route)
            check_test_target(route, target, list(entry.weights))
            entry.test_target = target

    def test_target(self, route: str) -> str | None:
        with self._lock:
            return self._test_route(route).test_target

    # -- internals -----------------------------------------------------------------------

    def _find(self, route: str) -> _Route:
        check_name("route", route)
        entry = self._routes.get(route)
        if entry is None:
            raise TrafficError(f"unknown route {route!r}")
        return entry

    def _test_route(self, route: str) -> _Route:
        entry = self._find(route)
        if not entry.has_test_route:
            raise TrafficError(f"route {route!r} has no test route")
        return entry
