"""Per-host progress through its lifecycle events: starting a host, acknowledgements,
results, deadlines, and ending a host. Every strategy moves hosts with these; none of
them decides what the deployment does next (that is the strategy's job)."""

from __future__ import annotations

from collections.abc import Callable

from shipyard.engine.lifecycle import STOP_EVENTS
from shipyard.engine.messages import Completed, Dispatch, Notify, Outcome, RestoreTraffic
from shipyard.engine.state import DeploymentState, EventState, Label, TargetState
from shipyard.model import LifecycleEventStatus, TargetStatus

# A strategy's say, after an event succeeded, on whether the host must wait (Ready)
# before its next event: blue/green holds replacement hosts until traffic may move.
Hold = Callable[[TargetState, str, DeploymentState], bool]


def never_hold(target: TargetState, next_event: str, state: DeploymentState) -> bool:
    return False


def new_target(target_id: str, events: tuple[str, ...], label: Label | None = None) -> TargetState:
    return TargetState(
        target_id=target_id, events=[EventState(name) for name in events], label=label
    )


def unknown_error(message: str) -> dict[str, str]:
    """Diagnostics for a failure that no script reported."""
    return {"errorCode": "UnknownError", "scriptName": "", "message": message, "logTail": ""}


def start(state: DeploymentState, target: TargetState, now: float, out: Outcome) -> None:
    """Send a waiting host on to its next event."""
    current = target.current()
    assert current is not None
    first = current is target.events[0]
    target.status = TargetStatus.IN_PROGRESS
    target.last_updated = now
    target.deadline = now + state.event_timeout
    out.touch(target.target_id)
    out.actions.append(Dispatch(target.target_id, current.name))
    if first:
        out.actions.append(Notify("InstanceStart", target.target_id))


def acknowledged(
    state: DeploymentState, target_id: str, name: str, now: float, out: Outcome
) -> None:
    target = state.targets.get(target_id)
    current = target.current() if target else None
    if target is None or current is None or current.name != name or not target.in_flight:
        return  # stale, foreign or not dispatched: nothing to change
    if current.status == LifecycleEventStatus.PENDING:
        current.status = LifecycleEventStatus.IN_PROGRESS
        current.start_time = now
        target.last_updated = now
        target.deadline = now + state.event_timeout
        out.touch(target_id)


def completed(
    state: DeploymentState, done: Completed, now: float, out: Outcome, hold: Hold = never_hold
) -> None:
    target = state.targets.get(done.target_id)
    current = target.current() if target else None
    if target is None or current is None or current.name != done.event or not target.in_flight:
        return
    current.start_time = current.start_time or now
    current.end_time = now
    current.diagnostics = dict(done.diagnostics) if done.diagnostics else None
    target.last_updated = now
    target.deadline = None
    out.touch(target.target_id)
    forgiven = (
        not done.succeeded and done.event in STOP_EVENTS and state.ignore_application_stop_failures
    )
    if done.succeeded or forgiven:
        current.status = (
            LifecycleEventStatus.SUCCEEDED if done.succeeded else LifecycleEventStatus.FAILED
        )
        nxt = target.current()
        if nxt is None:
            target.status = TargetStatus.SUCCEEDED
            out.actions.append(Notify("InstanceSuccess", target.target_id))
        elif hold(target, nxt.name, state):
            pass  # Ready: its next events belong to a later phase
        elif state.stop_requested:
            end(target, TargetStatus.FAILED, now)
        else:
            target.deadline = now + state.event_timeout
            handed = done.agent_waiting and nxt.name not in state.server_events
            if handed:  # the same as its acknowledgement arriving now
                nxt.status = LifecycleEventStatus.IN_PROGRESS
                nxt.start_time = now
            out.actions.append(Dispatch(target.target_id, nxt.name, acknowledged=handed))
        return
    current.status = LifecycleEventStatus.FAILED
    end(target, TargetStatus.FAILED, now)
    out.actions.append(Notify("InstanceFailure", target.target_id))
    if _traffic_left_blocked(target):
        out.actions.append(RestoreTraffic(target.target_id))


def _traffic_left_blocked(target: TargetState) -> bool:
    status = {event.name: event.status for event in target.events}
    blocked = status.get("BlockTraffic") in (
        LifecycleEventStatus.SUCCEEDED,
        LifecycleEventStatus.FAILED,
    )
    return blocked and status.get("AllowTraffic") != LifecycleEventStatus.SUCCEEDED


def end(target: TargetState, status: TargetStatus, now: float) -> None:
    """Finish a target: every event not yet run is Skipped."""
    for event in target.events:
        if event.status in (LifecycleEventStatus.PENDING, LifecycleEventStatus.IN_PROGRESS):
            event.status = LifecycleEventStatus.SKIPPED
    target.status = status
    target.deadline = None
    target.last_updated = now


def fail_current(
    state: DeploymentState,
    target_id: str,
    message: str,
    now: float,
    out: Outcome,
    hold: Hold = never_hold,
) -> None:
    """The host's running event failed without a result from whoever ran it."""
    target = state.targets.get(target_id)
    current = target.current() if target else None
    if target is None or current is None or not target.in_flight:
        return
    failed = Completed(target_id, current.name, succeeded=False, diagnostics=unknown_error(message))
    completed(state, failed, now, out, hold)


def expire_deadlines(state: DeploymentState, now: float, out: Outcome, hold: Hold) -> None:
    for target in state.targets.values():
        if target.in_flight and target.deadline is not None and target.deadline <= now:
            current = target.current()
            if current is None:
                continue
            message = f"No result for {current.name} within {state.event_timeout:.0f} seconds"
            fail_current(state, target.target_id, message, now, out, hold)


def abandon_in_flight(state: DeploymentState, now: float, out: Outcome) -> None:
    """Emergency: the events in flight count as failed without waiting for them."""
    for target in state.targets.values():
        current = target.current()
        if not target.in_flight or current is None:
            continue
        current.status = LifecycleEventStatus.FAILED
        current.end_time = now
        current.diagnostics = unknown_error(
            "Abandoned: the deployment was stopped for an emergency rollback"
        )
        end(target, TargetStatus.FAILED, now)
        out.touch(target.target_id)


def skip_pending(state: DeploymentState, now: float, out: Outcome) -> None:
    for target in state.targets.values():
        if target.status == TargetStatus.PENDING:
            end(target, TargetStatus.SKIPPED, now)
            out.touch(target.target_id)


def withdraw_unstarted(state: DeploymentState, now: float, out: Outcome) -> int:
    """Stopping: end the hosts whose current event no agent has picked up yet.
    Returns how many hosts are still running an event."""
    running = 0
    for target in state.targets.values():
        if not target.in_flight:
            continue
        current = target.current()
        if current is not None and current.status == LifecycleEventStatus.PENDING:
            started = any(e.status != LifecycleEventStatus.PENDING for e in target.events)
            end(target, TargetStatus.FAILED if started else TargetStatus.SKIPPED, now)
            out.touch(target.target_id)
        else:
            running += 1
    return running
