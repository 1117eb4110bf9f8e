"""Weighted traffic: the share of a route's requests each of its targets gets.

Functions and containers do not take hosts out one by one; they move a *route*'s
traffic from the original target to the replacement in steps (engine/schedule.py).
A route is what clients call: a Lambda alias, an ECS production listener, an HAProxy
backend. Its targets are what serves them: function versions, target groups, servers.
Beside the production weights a route may have a *test route* (an ECS test listener)
that sends all of its traffic to one target, so hooks can try the replacement before
it takes production traffic.

A ``WeightedRouter`` is the seam every such balancer sits behind:

- ``set_weights``: target name -> percent, whole numbers summing to 100; targets of the
  route not named get 0;
- ``weights``: every target of the route with its percent;
- ``verify``: does traffic now flow in these proportions? ``Verified.UNKNOWN`` when the
  balancer cannot tell, which is an answer, not an error;
- ``set_test_route`` / ``test_target``: the test route's one target, or None (no test
  traffic).

Invariants:

- the calls block and raise only ``TrafficError``, with a message a person can act on;
- a call that fails changes nothing: weights are checked against the route's targets
  before anything is sent;
- adding a balancer means one module plus one line in ``WEIGHTED_ROUTERS``
  (traffic/__init__.py). ``weighted_memory`` is a real in-process router for tests and
  development; ``haproxy_weighted`` drives HAProxy through its runtime API.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Protocol

from shipyard.traffic import TrafficError, check_name

FULL = 100


class Verified(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"  # the balancer cannot say what it does


class WeightedRouter(Protocol):
    def set_weights(self, route: str, weights: Mapping[str, int]) -> None:
        """Give each named target its percent of the route's traffic, the others 0."""
        ...

    def weights(self, route: str) -> dict[str, int]:
        """Every target of the route and its percent of the traffic."""
        ...

    def verify(self, route: str, weights: Mapping[str, int]) -> Verified:
        """Whether the route's traffic is split as ``weights`` says, as far as the
        balancer can tell."""
        ...

    def set_test_route(self, route: str, target: str | None) -> None:
        """Send the route's test traffic to ``target`` (None: to no target)."""
        ...

    def test_target(self, route: str) -> str | None:
        """The target the route's test traffic goes to, None when it goes nowhere."""
        ...


def check_weights(
    route: str, weights: Mapping[str, int], targets: Collection[str]
) -> dict[str, int]:
    """``weights`` completed with 0 for every other target of the route, or a
    TrafficError saying what is wrong with them."""
    for target, weight in weights.items():
        check_name("target", target)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= FULL:
            raise TrafficError(
                f"invalid weight {weight!r} for target {target!r}: a whole percent from 0 to 100"
            )
    unknown = sorted(set(weights) - set(targets))
    if unknown:
        raise TrafficError(
            f"route {route!r} has no target {', '.join(map(repr, unknown))} "
            f"(its targets: {', '.join(targets)})"
        )
    total = sum(weights.values())
    if total != FULL:
        raise TrafficError(f"weights for route {route!r} add up to {total}, not 100: {weights}")
    return {target: weights.get(target, 0) for target in targets}


def check_test_target(route: str, target: str | None, targets: Collection[str]) -> None:
    if target is not None and target not in targets:
        check_name("target", target)
        raise TrafficError(
            f"route {route!r} has no target {target!r} (its targets: {', '.join(targets)})"
        )


def shares(raw: Mapping[str, int]) -> dict[str, int]:
    """Relative weights as whole percents that add up to 100 (largest remainders get
    the rounding); all 0 when no target has any weight."""
    total = sum(raw.values())
    if total == 0:
        return dict.fromkeys(raw, 0)
    floors = {target: weight * FULL // total for target, weight in raw.items()}
    short = FULL - sum(floors.values())
    by_remainder = sorted(raw, key=lambda t: raw[t] * FULL % total, reverse=True)
    for target in by_remainder[:short]:
        floors[target] += 1
    return floors


def same_split(actual: Mapping[str, int], expected: Mapping[str, int]) -> bool:
    """Whether relative weights ``actual`` split traffic as percents ``expected`` do
    (targets missing from either side count as 0)."""
    total = sum(actual.values())
    names = set(actual) | set(expected)
    return total > 0 and all(
        actual.get(name, 0) * FULL == expected.get(name, 0) * total for name in names
    )
