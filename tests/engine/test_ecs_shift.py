"""The traffic shift with a replacement installed first (ECS) through ``machine.step``:
the eight events in order, the ready wait before production traffic moves, the
termination wait and the retirement of the original, and what a stop or a failure
takes back at each point."""

from __future__ import annotations

from typing import Any

from shipyard.engine import machine, messages
from shipyard.engine.hosts import new_target
from shipyard.engine.lifecycle import ECS
from shipyard.engine.state import DeploymentState, Phase, StopReason, Strategy
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

TARGET = "main:web"
TIMEOUT = 60.0
MINUTE = 10.0
CANARY = {
    "type": "TimeBasedCanary",
    "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 1},
}
HOOKS = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic")


def new_state(
    *,
    ready_wait: float | None = None,
    terminate_wait: float = 0.0,
    rollback_events: tuple[str, ...] = (),
) -> DeploymentState:
    return DeploymentState(
        deployment_id="d-ECS00001",
        status=DeploymentStatus.CREATED,
        health_rule={"type": "HOST_COUNT", "value": 0},
        event_timeout=TIMEOUT,
        strategy=Strategy.TRAFFIC_SHIFT,
        server_events=list(ECS),
        routing=CANARY,
        minute_seconds=MINUTE,
        ready_wait=ready_wait,
        terminate_wait=terminate_wait,
        auto_rollback_events=list(rollback_events),
        targets={TARGET: new_target(TARGET, ECS)},
    )


def step(state: DeploymentState, event: messages.Input, now: float = 0.0) -> messages.Outcome:
    return machine.step(state, event, now)


def actions(out: messages.Outcome, kind: type[Any]) -> list[Any]:
    return [a for a in out.actions if isinstance(a, kind)]


def finish(state: DeploymentState, event: str, now: float = 0.0) -> messages.Outcome:
    """The server's answer for ``event``: a hook's report or a step's result."""
    if event in ("Install", "AllowTestTraffic"):
        return step(state, messages.Completed(TARGET, event, True), now)
    return step(state, messages.HookReported(TARGET, event, True), now)


def through(state: DeploymentState, last: str, now: float = 0.0) -> messages.Outcome:
    """Start and finish every event up to and including ``last``."""
    out = step(state, messages.Start(), now)
    for event in ECS[: ECS.index(last) + 1]:
        out = finish(state, event, now)
    return out


def status_of(state: DeploymentState, event: str) -> LifecycleEventStatus:
    return next(e.status for e in state.targets[TARGET].events if e.name == event)


def test_the_events_run_in_order_and_the_shift_follows_the_schedule() -> None:
    state = new_state()
    out = step(state, messages.Start())
    order = [a.event for a in actions(out, messages.Dispatch)]
    for event in ECS[:6]:
        out = finish(state, event)
        order += [a.event for a in actions(out, messages.Dispatch)]
    assert order == list(ECS[:6])  # AllowTraffic is not dispatched: it is the shift
    assert [a.target_weight for a in actions(out, messages.ShiftTraffic)] == [10]

    step(state, messages.TrafficShifted(TARGET, 10, True), 1.0)
    assert actions(step(state, messages.Tick(), MINUTE - 0.1), messages.ShiftTraffic) == []
    out = step(state, messages.Tick(), MINUTE)
    assert [a.target_weight for a in actions(out, messages.ShiftTraffic)] == [100]
    out = step(state, messages.TrafficShifted(TARGET, 100, True), MINUTE)
    assert [a.event for a in actions(out, messages.Dispatch)] == ["AfterAllowTraffic"]

    out = finish(state, "AfterAllowTraffic", MINUTE + 1)
    assert actions(out, messages.RetireHosts) == [messages.RetireHosts((TARGET,))]
    assert state.status == DeploymentStatus.IN_PROGRESS and state.retiring
    out = step(state, messages.Retired(TARGET, True), MINUTE + 2)
    assert state.status == DeploymentStatus.SUCCEEDED
    assert actions(out, messages.Finished) == [messages.Finished(DeploymentStatus.SUCCEEDED)]


def test_the_termination_wait_ends_by_time_or_by_a_continue() -> None:
    state = new_state(terminate_wait=5 * MINUTE)
    through(state, "AfterAllowTestTraffic")
    step(state, messages.HookReported(TARGET, "BeforeAllowTraffic", True))
    step(state, messages.TrafficShifted(TARGET, 10, True))
    step(state, messages.Tick(), MINUTE)
    step(state, messages.TrafficShifted(TARGET, 100, True), MINUTE)
    out = finish(state, "AfterAllowTraffic", 20.0)
    assert (state.phase, state.terminate_at) == (Phase.TERMINATE, 20.0 + 5 * MINUTE)
    assert actions(out, messages.RetireHosts) == []
    assert actions(step(state, messages.Tick(), 60.0), messages.RetireHosts) == []

    out = step(state, messages.Continued("TERMINATION_WAIT"), 61.0)
    assert actions(out, messages.RetireHosts) == [messages.RetireHosts((TARGET,))]

    timed = new_state(terminate_wait=2.0)
    through(timed, "AfterAllowTestTraffic")
    step(timed, messages.HookReported(TARGET, "BeforeAllowTraffic", True))
    step(timed, messages.TrafficShifted(TARGET, 10, True))
    step(timed, messages.Tick(), MINUTE)
    step(timed, messages.TrafficShifted(TARGET, 100, True), MINUTE)
    finish(timed, "AfterAllowTraffic", 11.0)
    assert actions(step(timed, messages.Tick(), 13.0), messages.RetireHosts) != []


def test_the_ready_wait_holds_production_until_continued() -> None:
    state = new_state(ready_wait=30.0)
    out = through(state, "AfterAllowTestTraffic", 5.0)
    assert state.status == DeploymentStatus.READY
    assert state.targets[TARGET].status == TargetStatus.READY
    assert messages.Notify("DeploymentReady") in out.actions
    assert actions(out, messages.Dispatch) == []
    assert actions(step(state, messages.Tick(), 20.0), messages.Dispatch) == []

    out = step(state, messages.Continued("READY_WAIT"), 21.0)

    assert state.status == DeploymentStatus.IN_PROGRESS
    assert [a.event for a in actions(out, messages.Dispatch)] == ["BeforeAllowTraffic"]


def test_a_ready_wait_that_runs_out_stops_and_takes_the_replacement_away() -> None:
    state = new_state(ready_wait=30.0, rollback_events=("DEPLOYMENT_STOP_ON_REQUEST",))
    through(state, "AfterAllowTestTraffic", 5.0)

    out = step(state, messages.Tick(), 35.0)

    assert state.status == DeploymentStatus.STOPPED
    assert state.stop_reason == StopReason.READY_TIMEOUT
    assert actions(out, messages.ShiftTraffic) == [messages.ShiftTraffic(TARGET, 0)]
    assert actions(out, messages.StartRollback) == []  # production never moved


def test_a_failing_test_traffic_hook_never_touches_production() -> None:
    state = new_state()
    through(state, "AllowTestTraffic")

    out = step(state, messages.HookReported(TARGET, "AfterAllowTestTraffic", False, "no"))

    assert state.status == DeploymentStatus.FAILED
    # The only shift is the way back: test route and replacement taken away.
    assert actions(out, messages.ShiftTraffic) == [messages.ShiftTraffic(TARGET, 0)]
    assert status_of(state, "AllowTraffic") == LifecycleEventStatus.SKIPPED


def test_a_failure_before_install_has_nothing_to_take_back() -> None:
    state = new_state()
    step(state, messages.Start())

    out = step(state, messages.HookReported(TARGET, "BeforeInstall", False, "no"))

    assert state.status == DeploymentStatus.FAILED
    assert actions(out, messages.ShiftTraffic) == []


def test_a_stop_during_install_takes_the_replacement_away() -> None:
    state = new_state()
    step(state, messages.Start())
    finish(state, "BeforeInstall")

    out = step(state, messages.StopRequested())

    assert state.status == DeploymentStatus.STOPPED
    assert actions(out, messages.ShiftTraffic) == [messages.ShiftTraffic(TARGET, 0)]


def _in_termination_wait(**options: Any) -> DeploymentState:
    state = new_state(terminate_wait=100.0, **options)
    through(state, "AfterAllowTestTraffic")
    step(state, messages.HookReported(TARGET, "BeforeAllowTraffic", True))
    step(state, messages.TrafficShifted(TARGET, 10, True))
    step(state, messages.Tick(), MINUTE)
    step(state, messages.TrafficShifted(TARGET, 100, True), MINUTE)
    finish(state, "AfterAllowTraffic", 11.0)
    assert state.phase == Phase.TERMINATE
    return state


def test_a_stop_in_the_termination_wait_keeps_the_new_version() -> None:
    state = _in_termination_wait()

    out = step(state, messages.StopRequested(), 12.0)

    assert state.status == DeploymentStatus.STOPPED
    assert actions(out, messages.RetireHosts) == [messages.RetireHosts((TARGET,))]
    assert actions(out, messages.ShiftTraffic) == []
    assert actions(out, messages.StartRollback) == []


def test_a_stop_with_rollback_in_the_termination_wait_puts_traffic_back() -> None:
    state = _in_termination_wait()

    out = step(state, messages.StopRequested(rollback=True), 12.0)

    assert state.status == DeploymentStatus.STOPPED
    assert actions(out, messages.ShiftTraffic) == [messages.ShiftTraffic(TARGET, 0)]
    assert actions(out, messages.RetireHosts) == []
    assert actions(out, messages.StartRollback) == [messages.StartRollback()]


def test_an_alarm_in_the_termination_wait_rolls_back_when_configured() -> None:
    state = _in_termination_wait(rollback_events=("DEPLOYMENT_STOP_ON_ALARM",))

    out = step(state, messages.AlarmFired("errors", "too many"), 12.0)

    assert state.status == DeploymentStatus.STOPPED
    assert state.error_code == ErrorCode.ALARM_ACTIVE
    assert actions(out, messages.ShiftTraffic) == [messages.ShiftTraffic(TARGET, 0)]


def test_a_stop_while_retiring_waits_for_the_retirement() -> None:
    state = _in_termination_wait()
    step(state, messages.Continued("TERMINATION_WAIT"), 12.0)

    out = step(state, messages.StopRequested(), 12.5)
    assert actions(out, messages.ShiftTraffic) == []
    assert state.status == DeploymentStatus.IN_PROGRESS
    step(state, messages.Retired(TARGET, True), 13.0)

    assert state.status == DeploymentStatus.SUCCEEDED


def test_a_failed_retirement_fails_the_deployment() -> None:
    state = _in_termination_wait()
    step(state, messages.Continued("TERMINATION_WAIT"), 12.0)

    step(state, messages.Retired(TARGET, False, "DeleteTaskSet: access denied"), 13.0)

    assert state.status == DeploymentStatus.FAILED
    assert state.error_code == ErrorCode.ECS_UPDATE_ERROR
    assert "access denied" in (state.error_message or "")
