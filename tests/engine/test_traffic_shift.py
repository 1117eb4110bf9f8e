"""The traffic-shift strategy end to end through ``machine.step``: hooks the server runs,
AllowTraffic carried out as ShiftTraffic steps on the routing config's schedule,
and traffic put back on the original revision when the deployment fails or stops."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine import machine, messages, schedule
from shipyard.engine.hosts import new_target
from shipyard.engine.state import DeploymentState, Strategy
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

EVENTS = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
TARGET = "fn"
TIMEOUT = 60.0
MINUTE = 10.0  # seconds per routing-config minute in these tests
ALL_AT_ONCE = {"type": "AllAtOnce"}


def canary(percent: int, minutes: int) -> dict[str, Any]:
    settings = {"canaryPercentage": percent, "canaryInterval": minutes}
    return {"type": "TimeBasedCanary", "timeBasedCanary": settings}


def linear(percent: int, minutes: int) -> dict[str, Any]:
    settings = {"linearPercentage": percent, "linearInterval": minutes}
    return {"type": "TimeBasedLinear", "timeBasedLinear": settings}


def new_state(routing: dict[str, Any], *, rollback_on_failure: bool = False) -> DeploymentState:
    return DeploymentState(
        deployment_id="d-SHIFT0001",
        status=DeploymentStatus.CREATED,
        health_rule={"type": "HOST_COUNT", "value": 0},
        event_timeout=TIMEOUT,
        strategy=Strategy.TRAFFIC_SHIFT,
        server_events=list(EVENTS),
        routing=routing,
        minute_seconds=MINUTE,
        auto_rollback_events=["DEPLOYMENT_FAILURE"] if rollback_on_failure else [],
        targets={TARGET: new_target(TARGET, EVENTS)},
    )


def weights_of(routing: dict[str, Any]) -> list[int]:
    steps = schedule.steps(schedule.parse_routing(routing), MINUTE)
    return [step.target_weight for step in steps]


def offsets_of(routing: dict[str, Any]) -> list[float]:
    return [step.offset for step in schedule.steps(schedule.parse_routing(routing), MINUTE)]


def shifts(out: messages.Outcome) -> list[int]:
    return [a.target_weight for a in out.actions if isinstance(a, messages.ShiftTraffic)]


def dispatched(out: messages.Outcome) -> list[str]:
    return [a.event for a in out.actions if isinstance(a, messages.Dispatch)]


def hook(event: str, ok: bool = True) -> messages.HookReported:
    return messages.HookReported(TARGET, event, ok, "" if ok else f"{event} said no")


def shifted(weight: int, ok: bool = True) -> messages.TrafficShifted:
    return messages.TrafficShifted(TARGET, weight, ok, "" if ok else "router unreachable")


def event_status(state: DeploymentState, name: str) -> LifecycleEventStatus:
    return next(e.status for e in state.targets[TARGET].events if e.name == name)


def begin_shift(state: DeploymentState, at: float = 0.0) -> messages.Outcome:
    """Start, and finish BeforeAllowTraffic at ``at``: the shift's first step."""
    out = machine.step(state, messages.Start(), at)
    assert dispatched(out) == ["BeforeAllowTraffic"]
    return machine.step(state, hook("BeforeAllowTraffic"), at)


# ---- the happy path --------------------------------------------------------------------


def test_canary_walks_the_hooks_and_the_schedule_to_success() -> None:
    state = new_state(canary(10, 5))  # 10 % at 0, 100 % at 50 s
    out = begin_shift(state, 0.0)
    assert out.actions == [messages.ShiftTraffic(TARGET, 10)]  # no Dispatch of AllowTraffic
    assert event_status(state, "AllowTraffic") == LifecycleEventStatus.IN_PROGRESS
    assert (state.shift_started, state.shift_weight, state.shift_next_at) == (0.0, 10, 50.0)

    out = machine.step(state, shifted(10), 1.0)
    assert out.actions == []
    assert event_status(state, "AllowTraffic") == LifecycleEventStatus.IN_PROGRESS

    out = machine.step(state, messages.Tick(), 49.9)
    assert (out.actions, out.changed) == ([], False)

    out = machine.step(state, messages.Tick(), 50.0)
    assert out.actions == [messages.ShiftTraffic(TARGET, 100)]
    assert state.shift_next_at is None

    out = machine.step(state, shifted(100), 51.0)
    assert event_status(state, "AllowTraffic") == LifecycleEventStatus.SUCCEEDED
    assert dispatched(out) == ["AfterAllowTraffic"]
    assert shifts(out) == []

    out = machine.step(state, hook("AfterAllowTraffic"), 52.0)
    assert state.status == DeploymentStatus.SUCCEEDED
    assert state.targets[TARGET].status == TargetStatus.SUCCEEDED
    assert messages.Finished(DeploymentStatus.SUCCEEDED) in out.actions
    assert shifts(out) == []


def test_a_completed_hook_also_leads_to_the_shift_not_to_a_dispatch() -> None:
    """The server may report its own hook as Completed (as it does BlockTraffic); the
    next event, AllowTraffic, must still become a ShiftTraffic and never a Dispatch."""
    state = new_state(ALL_AT_ONCE)
    machine.step(state, messages.Start(), 0.0)
    out = machine.step(state, messages.Completed(TARGET, "BeforeAllowTraffic", True), 1.0)
    assert dispatched(out) == []
    assert shifts(out) == [100]


@pytest.mark.parametrize(
    ("routing", "weights"),
    [
        (ALL_AT_ONCE, [100]),
        (canary(10, 5), [10, 100]),
        (canary(25, 1), [25, 100]),
        (linear(10, 1), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]),
        (linear(30, 2), [30, 60, 90, 100]),
        (linear(50, 3), [50, 100]),
    ],
)
def test_each_step_falls_due_on_its_offset(routing: dict[str, Any], weights: list[int]) -> None:
    state = new_state(routing)
    seen = shifts(begin_shift(state, 100.0))
    for offset in offsets_of(routing)[1:]:
        assert shifts(machine.step(state, messages.Tick(), 100.0 + offset - 0.5)) == []
        seen += shifts(machine.step(state, messages.Tick(), 100.0 + offset))
    assert seen == weights
    machine.step(state, shifted(100), 10_000.0)
    machine.step(state, hook("AfterAllowTraffic"), 10_000.0)
    assert state.status == DeploymentStatus.SUCCEEDED


def test_a_report_of_an_earlier_weight_does_not_finish_the_event() -> None:
    state = new_state(canary(10, 5))
    begin_shift(state)
    machine.step(state, messages.Tick(), 50.0)
    out = machine.step(state, shifted(10), 51.0)  # the first step's late answer
    assert out.actions == []
    assert event_status(state, "AllowTraffic") == LifecycleEventStatus.IN_PROGRESS


def test_a_late_tick_moves_one_step_and_then_waits_a_whole_interval() -> None:
    """After an outage the shift resumes where it was; the steps it missed are not
    skipped, and the traffic stays at each step for its interval."""
    state = new_state(linear(25, 1))  # 25, 50, 75, 100 every 10 s
    begin_shift(state, 0.0)
    assert shifts(machine.step(state, messages.Tick(), 35.0)) == [50]
    assert shifts(machine.step(state, messages.Tick(), 44.0)) == []
    assert shifts(machine.step(state, messages.Tick(), 45.0)) == [75]
    assert shifts(machine.step(state, messages.Tick(), 55.0)) == [100]


# ---- failures and stops --------------------------------------------------------------


def test_a_failed_before_hook_fails_without_touching_traffic() -> None:
    state = new_state(canary(10, 5))
    machine.step(state, messages.Start(), 0.0)
    out = machine.step(state, hook("BeforeAllowTraffic", ok=False), 1.0)
    assert state.status == DeploymentStatus.FAILED
    assert state.error_code == ErrorCode.HEALTH_CONSTRAINTS
    assert shifts(out) == []
    diagnostics = state.targets[TARGET].events[0].diagnostics
    assert diagnostics is not None and diagnostics["message"] == "BeforeAllowTraffic said no"
    assert event_status(state, "AllowTraffic") == LifecycleEventStatus.SKIPPED


def test_a_failed_shift_fails_and_puts_traffic_back() -> None:
    state = new_state(linear(20, 1))
    begin_shift(state)
    machine.step(state, messages.Tick(), 10.0)  # 40 %
    out = machine.step(state, shifted(40, ok=False), 11.0)
    assert state.status == DeploymentStatus.FAILED
    assert shifts(out) == [0]
    assert state.shift_weight == 0
    allow = state.targets[TARGET].events[1]
    assert allow.status == LifecycleEventStatus.FAILED
    assert allow.diagnostics is not None
    assert "40%: router unreachable" in allow.diagnostics["message"]
    assert event_status(state, "AfterAllowTraffic") == LifecycleEventStatus.SKIPPED


@pytest.mark.parametrize("rollback", [False, True])
def test_a_failed_after_hook_puts_traffic_back(rollback: bool) -> None:
    state = new_state(ALL_AT_ONCE, rollback_on_failure=rollback)
    begin_shift(state)
    machine.step(state, shifted(100), 1.0)
    out = machine.step(state, hook("AfterAllowTraffic", ok=False), 2.0)
    assert state.status == DeploymentStatus.FAILED
    assert out.actions.index(messages.ShiftTraffic(TARGET, 0)) < out.actions.index(
        messages.Finished(DeploymentStatus.FAILED)
    )
    assert (messages.StartRollback() in out.actions) is rollback


def test_stop_mid_shift_puts_traffic_back_and_stops() -> None:
    state = new_state(linear(10, 1))
    begin_shift(state)
    machine.step(state, messages.Tick(), 10.0)
    out = machine.step(state, messages.StopRequested(), 12.0)
    assert state.status == DeploymentStatus.STOPPED
    assert state.error_code == ErrorCode.MANUAL_STOP
    assert shifts(out) == [0]
    assert state.targets[TARGET].status == TargetStatus.FAILED
    # The router's answer to the shift back, and later ticks, change nothing.
    assert not machine.step(state, shifted(0), 13.0).changed
    assert not machine.step(state, messages.Tick(), 100.0).changed


def test_stop_before_the_shift_leaves_traffic_alone() -> None:
    state = new_state(canary(10, 5))
    machine.step(state, messages.Start(), 0.0)
    out = machine.step(state, messages.StopRequested(), 1.0)
    assert state.status == DeploymentStatus.STOPPED
    assert shifts(out) == []


def test_pause_holds_the_next_step_until_resumed() -> None:
    state = new_state(canary(10, 5))
    begin_shift(state)
    machine.step(state, messages.Paused(), 10.0)
    assert shifts(machine.step(state, messages.Tick(), 50.0)) == []
    assert shifts(machine.step(state, messages.Tick(), 55.0)) == []
    assert state.shift_weight == 10
    out = machine.step(state, messages.Resumed(), 56.0)
    assert shifts(out) == [100]


def test_a_long_pause_does_not_run_out_the_event_deadline() -> None:
    state = new_state(canary(10, 5))
    begin_shift(state)
    machine.step(state, messages.Paused(), 10.0)
    for now in range(20, 1000, 20):
        machine.step(state, messages.Tick(), float(now))
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert shifts(machine.step(state, messages.Resumed(), 1000.0)) == [100]


def test_the_event_deadline_covers_the_whole_schedule() -> None:
    state = new_state(canary(10, 10))  # 100 % at 100 s, longer than the 60 s timeout
    begin_shift(state)
    machine.step(state, messages.Tick(), TIMEOUT + 30.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert shifts(machine.step(state, messages.Tick(), 100.0)) == [100]
    # Without the router's answer, the last step gets the usual event timeout.
    machine.step(state, messages.Tick(), 100.0 + TIMEOUT - 1)
    assert state.status == DeploymentStatus.IN_PROGRESS
    out = machine.step(state, messages.Tick(), 100.0 + TIMEOUT)
    assert state.status == DeploymentStatus.FAILED
    assert shifts(out) == [0]
    allow = state.targets[TARGET].events[1]
    assert (
        allow.diagnostics is not None
        and "No result for AllowTraffic" in (allow.diagnostics["message"])
    )


# ---- the schedule, whatever the tick times -----------------------------------------


routings = st.one_of(
    st.just(ALL_AT_ONCE),
    st.builds(canary, st.integers(1, 99), st.integers(1, 30)),
    st.builds(linear, st.integers(5, 99), st.integers(1, 30)),
)


@given(
    routing=routings,
    gaps=st.lists(st.floats(0.0, TIMEOUT - 1), max_size=40),
    stop_after=st.none() | st.integers(0, 40),
)
def test_emitted_weights_are_the_schedule_in_order(
    routing: dict[str, Any], gaps: list[float], stop_after: int | None
) -> None:
    """Ticks at random times, then on time (up to a stop at a random point), each step
    confirmed at once by the router: the weights sent are the schedule's, in order,
    none skipped, and each held at least for its interval."""
    state = new_state(routing)
    emitted = [(0.0, weight) for weight in shifts(begin_shift(state, 0.0))]
    expected = weights_of(routing)
    now = 0.0
    for count in range(len(gaps) + len(expected)):
        if state.shift_weight == 100:
            break
        if count == stop_after:
            out = machine.step(state, messages.StopRequested(), now)
            assert shifts(out) == [0]
            assert state.status == DeploymentStatus.STOPPED
            break
        machine.step(state, shifted(state.shift_weight), now)
        assert state.shift_next_at is not None
        now += gaps[count] if count < len(gaps) else max(0.0, state.shift_next_at - now)
        emitted += [(now, weight) for weight in shifts(machine.step(state, messages.Tick(), now))]
        assert state.status == DeploymentStatus.IN_PROGRESS
    weights = [weight for _, weight in emitted]
    assert weights == expected[: len(weights)]
    assert weights == sorted(weights)
    offsets = offsets_of(routing)
    for k in range(1, len(emitted)):
        assert emitted[k][0] - emitted[k - 1][0] >= offsets[k] - offsets[k - 1] - 1e-9
    if state.status == DeploymentStatus.IN_PROGRESS:
        assert weights == expected
        machine.step(state, shifted(100), now)
        assert event_status(state, "AllowTraffic") == LifecycleEventStatus.SUCCEEDED
