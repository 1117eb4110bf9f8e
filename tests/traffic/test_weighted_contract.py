"""The weighted router contract, run on every implementation (the ``weighted`` fixture:
the memory router and a real HAProxy).

Every weighted router must behave the same to the deployment runner: weights are whole
percents over the route's targets adding up to 100, a call that fails changes nothing,
``verify`` tells a split that holds from one that does not, and the test route has at
most one target. The world: route ``live`` over ``blue`` (all traffic) and ``green``,
with a test route; route ``solo`` over ``a`` (all traffic) and ``b``, without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shipyard.traffic import WEIGHTED_ROUTERS, RouterConfig, TrafficError, get_weighted_router
from shipyard.traffic.weighted import Verified, WeightedRouter
from tests.traffic.conftest import WEIGHTED_KINDS

START = {"blue": 100, "green": 0}


def test_every_registered_router_runs_this_suite() -> None:
    assert set(WEIGHTED_KINDS) == set(WEIGHTED_ROUTERS)


def test_a_route_starts_with_all_traffic_on_its_first_target(weighted: WeightedRouter) -> None:
    assert weighted.weights("live") == START
    assert weighted.weights("solo") == {"a": 100, "b": 0}
    assert weighted.verify("live", START) is Verified.YES


@pytest.mark.parametrize(
    "split", [{"blue": 90, "green": 10}, {"blue": 0, "green": 100}, {"blue": 50, "green": 50}]
)
def test_set_weights_then_read_and_verify_them(
    weighted: WeightedRouter, split: dict[str, int]
) -> None:
    weighted.set_weights("live", split)

    assert weighted.weights("live") == split
    assert weighted.verify("live", split) is Verified.YES
    assert weighted.weights("solo") == {"a": 100, "b": 0}  # other routes keep theirs


def test_targets_not_named_get_nothing(weighted: WeightedRouter) -> None:
    weighted.set_weights("live", {"blue": 30, "green": 70})

    weighted.set_weights("live", {"green": 100})

    assert weighted.weights("live") == {"blue": 0, "green": 100}


def test_setting_the_same_weights_twice_changes_nothing(weighted: WeightedRouter) -> None:
    weighted.set_weights("live", {"blue": 80, "green": 20})
    weighted.set_weights("live", {"blue": 80, "green": 20})

    assert weighted.weights("live") == {"blue": 80, "green": 20}


def test_verify_says_no_to_a_split_that_does_not_hold(weighted: WeightedRouter) -> None:
    weighted.set_weights("live", {"blue": 90, "green": 10})

    assert weighted.verify("live", {"blue": 80, "green": 20}) is Verified.NO
    assert weighted.verify("live", START) is Verified.NO


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"blue": 90, "green": 5}, "add up to 95, not 100"),
        ({"blue": 90, "green": 20}, "add up to 110, not 100"),
        ({}, "add up to 0, not 100"),
        ({"blue": 90, "purple": 10}, "route 'live' has no target 'purple'"),
        ({"blue": 101, "green": -1}, "invalid weight 101 for target 'blue'"),
        ({"blue": 90.0, "green": 10}, "invalid weight 90.0"),
        ({"blue": True, "green": 99}, "invalid weight True"),
        ({"blue; show info": 100}, "invalid target name"),
    ],
)
def test_bad_weights_are_refused_and_nothing_changes(
    weighted: WeightedRouter, weights: dict[str, Any], message: str
) -> None:
    weighted.set_weights("live", {"blue": 70, "green": 30})

    with pytest.raises(TrafficError, match=message):
        weighted.set_weights("live", weights)
    with pytest.raises(TrafficError, match=message):
        weighted.verify("live", weights)

    assert weighted.weights("live") == {"blue": 70, "green": 30}


def test_unknown_route(weighted: WeightedRouter) -> None:
    calls: list[Callable[[], object]] = [
        lambda: weighted.weights("nope"),
        lambda: weighted.set_weights("nope", {"blue": 100}),
        lambda: weighted.verify("nope", {"blue": 100}),
        lambda: weighted.set_test_route("nope", "blue"),
        lambda: weighted.test_target("nope"),
    ]
    for call in calls:
        with pytest.raises(TrafficError, match="'nope'"):
            call()
    assert weighted.weights("live") == START


def test_test_route_set_moved_and_cleared(weighted: WeightedRouter) -> None:
    assert weighted.test_target("live") is None

    weighted.set_test_route("live", "green")
    assert weighted.test_target("live") == "green"

    weighted.set_test_route("live", "blue")
    assert weighted.test_target("live") == "blue"

    weighted.set_test_route("live", None)
    assert weighted.test_target("live") is None
    assert weighted.weights("live") == START  # production traffic never moved


def test_test_route_to_an_unknown_target_changes_nothing(weighted: WeightedRouter) -> None:
    weighted.set_test_route("live", "green")

    with pytest.raises(TrafficError, match="route 'live' has no target 'purple'"):
        weighted.set_test_route("live", "purple")

    assert weighted.test_target("live") == "green"


def test_a_route_without_test_route(weighted: WeightedRouter) -> None:
    with pytest.raises(TrafficError, match="route 'solo' has no test route"):
        weighted.set_test_route("solo", "b")
    with pytest.raises(TrafficError, match="route 'solo' has no test route"):
        weighted.test_target("solo")

    assert weighted.weights("solo") == {"a": 100, "b": 0}


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(TrafficError, match=r"unknown weighted router kind 'nginx' \(known: "):
        get_weighted_router(RouterConfig("nginx"))
