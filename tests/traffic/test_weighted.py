"""The weighted routers' shared arithmetic, and what is particular to the memory router
(seeding from config, playing a balancer that cannot verify)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.traffic import RouterConfig, TrafficError, get_weighted_router
from shipyard.traffic.weighted import Verified, same_split, shares
from shipyard.traffic.weighted_memory import MemoryWeightedRouter


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"a": 90, "b": 10}, {"a": 90, "b": 10}),
        ({"a": 1, "b": 1}, {"a": 50, "b": 50}),
        ({"a": 1, "b": 1, "c": 1}, {"a": 34, "b": 33, "c": 33}),
        ({"a": 3, "b": 1}, {"a": 75, "b": 25}),
        ({"a": 0, "b": 0}, {"a": 0, "b": 0}),
        ({"a": 256, "b": 0}, {"a": 100, "b": 0}),
    ],
)
def test_shares(raw: dict[str, int], expected: dict[str, int]) -> None:
    assert shares(raw) == expected


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.integers(0, 256), min_size=1))
def test_shares_add_up_to_100_and_keep_the_order(raw: dict[str, int]) -> None:
    result = shares(raw)

    assert set(result) == set(raw)
    assert sum(result.values()) == (100 if sum(raw.values()) else 0)
    for x in raw:
        for y in raw:
            if raw[x] > raw[y]:
                assert result[x] >= result[y]


@pytest.mark.parametrize(
    ("actual", "expected", "same"),
    [
        ({"a": 9, "b": 1}, {"a": 90, "b": 10}, True),  # proportions, not absolute weights
        ({"a": 9, "b": 1}, {"a": 80, "b": 20}, False),
        ({"a": 5, "b": 0}, {"a": 100}, True),  # a missing target counts as 0
        ({"a": 0, "b": 0}, {"a": 100}, False),  # nothing takes traffic
    ],
)
def test_same_split(actual: dict[str, int], expected: dict[str, int], same: bool) -> None:
    assert same_split(actual, expected) is same


def test_a_balancer_that_cannot_verify_says_unknown() -> None:
    router = MemoryWeightedRouter(verifiable=False)
    router.add_route("alias", ["1", "2"])
    router.set_weights("alias", {"1": 90, "2": 10})

    assert router.verify("alias", {"1": 90, "2": 10}) is Verified.UNKNOWN
    with pytest.raises(TrafficError, match="add up to 50"):  # bad input is still an error
        router.verify("alias", {"1": 50})


def test_the_memory_router_is_seeded_from_config() -> None:
    router = get_weighted_router(RouterConfig("memory", "live=blue,green; alias=1,2,3"))

    assert router.weights("live") == {"blue": 100, "green": 0}
    assert router.weights("alias") == {"1": 100, "2": 0, "3": 0}
    router.set_test_route("live", "green")
    assert router.test_target("live") == "green"


@pytest.mark.parametrize("address", ["live", "live=", "live=blue;=green"])
def test_a_bad_seed_is_an_error(address: str) -> None:
    with pytest.raises(TrafficError, match=r"expected 'route=target,target'|invalid route name"):
        get_weighted_router(RouterConfig("memory", address))


@pytest.mark.parametrize("targets", [[], ["blue", "blue"]])
def test_a_route_needs_distinct_targets(targets: list[str]) -> None:
    with pytest.raises(TrafficError, match="route 'live' needs distinct targets"):
        MemoryWeightedRouter().add_route("live", targets)
