"""Traffic-shift schedules: CodeDeploy's predefined configs as tables, bad configs as
errors, and every valid config's schedule as properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine.schedule import (
    MAX_SHIFT_MINUTES,
    InvalidTrafficRouting,
    RoutingType,
    ShiftStep,
    TrafficRouting,
    due,
    next_due_at,
    parse_routing,
    steps,
)
from shipyard.errors import ShipyardError
from shipyard.store.predefined_configs import PREDEFINED_CONFIGS

MINUTE = 60.0


def shifting(prefix: str, percent: Any, minutes: Any) -> dict[str, Any]:
    """A canary or linear trafficRoutingConfig as the API spells it."""
    kind = "TimeBased" + prefix.capitalize()
    settings = {f"{prefix}Percentage": percent, f"{prefix}Interval": minutes}
    return {"type": kind, f"timeBased{prefix.capitalize()}": settings}


def canary(percent: Any, minutes: Any) -> dict[str, Any]:
    return shifting("canary", percent, minutes)


def linear(percent: Any, minutes: Any) -> dict[str, Any]:
    return shifting("linear", percent, minutes)


def schedule_of(name: str) -> list[tuple[float, int]]:
    """(minutes, target %) of each step of a predefined config."""
    routing = parse_routing(PREDEFINED_CONFIGS[name]["trafficRoutingConfig"])
    return [(step.offset / MINUTE, step.target_weight) for step in steps(routing, MINUTE)]


# --- the documented configs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CodeDeployDefault.LambdaCanary10Percent5Minutes", [(0, 10), (5, 100)]),
        ("CodeDeployDefault.LambdaCanary10Percent30Minutes", [(0, 10), (30, 100)]),
        ("CodeDeployDefault.ECSCanary10Percent15Minutes", [(0, 10), (15, 100)]),
        (
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            [(minute, 10 * (minute + 1)) for minute in range(10)],
        ),
        (
            "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
            [(3 * k, 10 * (k + 1)) for k in range(10)],
        ),
        ("CodeDeployDefault.LambdaAllAtOnce", [(0, 100)]),
        ("CodeDeployDefault.ECSAllAtOnce", [(0, 100)]),
    ],
)
def test_predefined_configs(name: str, expected: list[tuple[float, int]]) -> None:
    assert schedule_of(name) == expected


def test_every_predefined_traffic_config_has_a_schedule() -> None:
    shifting = [c for c in PREDEFINED_CONFIGS.values() if "trafficRoutingConfig" in c]

    finals = {schedule_of(c["deploymentConfigName"])[-1][1] for c in shifting}

    assert len(shifting) == 14
    assert finals == {100}


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (30, [30, 60, 90, 100]),  # the last increment is the remainder
        (33, [33, 66, 99, 100]),
        (50, [50, 100]),
        (99, [99, 100]),
        (1, list(range(1, 101))),
    ],
)
def test_linear_percentages_that_do_not_divide_100(percent: int, expected: list[int]) -> None:
    schedule = steps(parse_routing(linear(percent, 2)), MINUTE)

    assert [s.target_weight for s in schedule] == expected
    assert [s.offset for s in schedule] == [2 * MINUTE * k for k in range(len(expected))]


def test_minutes_scale_by_the_server_setting() -> None:
    schedule = steps(parse_routing(canary(10, 5)), minute_seconds=0.01)

    assert [s.target_weight for s in schedule] == [10, 100]
    assert [s.offset for s in schedule] == pytest.approx([0.0, 0.05])


def test_original_weight_is_the_rest() -> None:
    assert (ShiftStep(0, 10).original_weight, ShiftStep(60, 100).original_weight) == (90, 0)


# --- bad configs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"type": "Linear"}, "type must be one of TimeBasedCanary"),
        ({}, "got None"),
        (canary(0, 5), "canaryPercentage must be from 1 to 99; got 0"),
        (canary(100, 5), "canaryPercentage must be from 1 to 99; got 100"),
        (linear(101, 1), "linearPercentage must be from 1 to 99; got 101"),
        (linear(10, 0), "linearInterval must be from 1 to 2880; got 0"),
        (canary(10, -1), "canaryInterval must be from 1 to 2880"),
        (canary(10, 2881), "canaryInterval must be from 1 to 2880; got 2881"),
        (linear(10, None), "linearInterval is required"),
        (linear(None, 1), "linearPercentage is required"),
        (canary(10.5, 5), "canaryPercentage must be a whole number; got 10.5"),
        (canary(True, 5), "must be a whole number; got True"),
        (linear("10", 1), "must be a whole number; got '10'"),
        ({"type": "TimeBasedCanary"}, "needs timeBasedCanary"),
        ({"type": "TimeBasedLinear", "timeBasedLinear": 5}, "needs timeBasedLinear as an object"),
        (
            {**canary(10, 5), "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1}},
            "a TimeBasedCanary config cannot have timeBasedLinear",
        ),
        ({**canary(10, 5), "type": "AllAtOnce"}, "AllAtOnce config cannot have timeBasedCanary"),
        # 100 increments of 1 %, 30 minutes apart: 2970 minutes from first to last.
        (linear(1, 30), "would take 2970 minutes; at most 2880"),
    ],
)
def test_bad_configs_are_domain_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTrafficRouting, match=message) as raised:
        parse_routing(doc)

    assert isinstance(raised.value, ShipyardError)


def test_the_longest_allowed_shift() -> None:
    # 10 increments, 320 minutes apart: exactly 2880 minutes from first to last.
    schedule = steps(parse_routing(linear(10, 320)), MINUTE)

    assert schedule[-1].offset == MAX_SHIFT_MINUTES * MINUTE


def test_a_routing_built_in_code_is_checked_too() -> None:
    with pytest.raises(InvalidTrafficRouting, match="no percentage or interval"):
        TrafficRouting(RoutingType.ALL_AT_ONCE, 10, 5)


@pytest.mark.parametrize("minute_seconds", [0, -1.0])
def test_minute_seconds_must_be_positive(minute_seconds: float) -> None:
    with pytest.raises(ValueError, match="minute_seconds must be positive"):
        steps(TrafficRouting(RoutingType.ALL_AT_ONCE), minute_seconds)


# --- which step is in force when -------------------------------------------------------

CANARY = steps(TrafficRouting(RoutingType.CANARY, 10, 5), MINUTE)


@pytest.mark.parametrize(
    ("now", "in_force", "next_at"),
    [
        (999.0, None, 1000.0),  # before the shift started
        (1000.0, 10, 1300.0),  # the canary step is due at the start
        (1299.9, 10, 1300.0),
        (1300.0, 100, None),  # the rest, exactly five minutes later
        (5000.0, 100, None),
    ],
)
def test_due_and_next_due_at(now: float, in_force: int | None, next_at: float | None) -> None:
    step = due(CANARY, started_at=1000.0, now=now)

    assert (step.target_weight if step else None) == in_force
    assert next_due_at(CANARY, started_at=1000.0, now=now) == next_at


# --- every valid config, as properties -------------------------------------------------


@st.composite
def routings(draw: st.DrawFn) -> TrafficRouting:
    kind = draw(st.sampled_from(RoutingType))
    if kind is RoutingType.ALL_AT_ONCE:
        return TrafficRouting(kind)
    percent = draw(st.integers(1, 99))
    increments = -(-100 // percent) if kind is RoutingType.LINEAR else 2
    interval = draw(st.integers(1, MAX_SHIFT_MINUTES // (increments - 1)))
    return TrafficRouting(kind, percent, interval)


minute_lengths = st.sampled_from([0.01, 0.5, 1.0, 60.0])


@given(routings(), minute_lengths)
def test_schedule_properties(routing: TrafficRouting, minute_seconds: float) -> None:
    schedule = steps(routing, minute_seconds)
    weights = [s.target_weight for s in schedule]
    offsets = [s.offset for s in schedule]

    assert schedule[0].offset == 0
    assert weights[-1] == 100
    assert all(0 < w <= 100 for w in weights)
    assert weights == sorted(weights)
    assert len(set(weights)) == len(weights)  # every step moves traffic
    assert all(s.original_weight + s.target_weight == 100 for s in schedule)
    gap = routing.interval * minute_seconds
    assert offsets == pytest.approx([k * gap for k in range(len(schedule))])
    assert offsets[-1] <= MAX_SHIFT_MINUTES * minute_seconds


@given(routings())
def test_each_kind_has_its_shape(routing: TrafficRouting) -> None:
    weights = [s.target_weight for s in steps(routing, MINUTE)]

    if routing.kind is RoutingType.ALL_AT_ONCE:
        assert weights == [100]
    elif routing.kind is RoutingType.CANARY:
        assert weights == [routing.percentage, 100]
    else:
        increments = [b - a for a, b in zip([0, *weights], weights, strict=False)]
        assert increments[:-1] == [routing.percentage] * (len(weights) - 1)
        assert 0 < increments[-1] <= routing.percentage


@given(routings(), st.floats(0, 1e6), st.lists(st.floats(-10, 3e5), min_size=1, max_size=20))
def test_due_follows_the_clock(
    routing: TrafficRouting, started: float, deltas: list[float]
) -> None:
    schedule = steps(routing, MINUTE)
    times = sorted(started + d for d in deltas)
    seen = [due(schedule, started, now) for now in times]

    in_force = [s.target_weight if s else 0 for s in seen]
    assert in_force == sorted(in_force)  # weights never go back as time passes
    for now, step in zip(times, seen, strict=True):
        upcoming = next_due_at(schedule, started, now)
        if step is None:
            assert now < started
        else:
            assert started + step.offset <= now
        if upcoming is None:
            assert step == schedule[-1]
        else:
            assert upcoming > now
            nxt = due(schedule, started, upcoming)
            assert nxt is not None and nxt.target_weight > (step.target_weight if step else 0)
