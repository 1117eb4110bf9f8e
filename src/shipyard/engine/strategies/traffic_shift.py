"""Traffic shift: a target's traffic moves from the original to the new revision by
weight, on the schedule of the deployment config's ``trafficRoutingConfig`` (canary,
linear, all at once), between hook events that the server runs (functions, containers).

The target's events run one after the other. Its ``AllowTraffic`` event is the shift:
instead of dispatching it, the strategy emits ``ShiftTraffic`` for each step of the
schedule as it falls due (time is an input: the sweeper's Tick), and the event succeeds
when the router reports the target at 100 percent. On a stop or a failure the traffic
goes back to the original revision (``ShiftTraffic`` to 0) before the deployment ends.
A deployment shifts one target (one function alias or one service), so the shift's
progress is kept on the deployment state. A replacement that was installed first (an
ECS task set) is taken back on a stop or failure even before any traffic moved, and
the ready and termination waits around the shift are in ``shift_waits``.
"""

from __future__ import annotations

from shipyard.engine import hosts, schedule
from shipyard.engine.messages import Completed, Dispatch, Outcome, ShiftTraffic, TrafficShifted
from shipyard.engine.state import DeploymentState, StopReason, TargetState
from shipyard.engine.strategies import shift_waits
from shipyard.engine.transitions import fail, move, wants_rollback
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

SHIFT_EVENT = "AllowTraffic"
# The event that creates a replacement (ECS); once begun there is something to undo.
INSTALL_EVENT = "Install"

hold = shift_waits.hold


def counted(state: DeploymentState) -> int:
    return len(state.targets)


def advance(state: DeploymentState, now: float, out: Outcome) -> None:
    _take_over_shift_dispatch(state, now, out)
    targets = list(state.targets.values())
    if state.retiring:
        return  # the new revision serves alone: only the answer of the retirement is due
    if state.stop_requested and shift_waits.in_termination_wait(state):
        _stop_in_termination_wait(state, now, out)
        return
    if state.stop_requested:
        _end_stopped(state, targets, now, out)
        return
    for target in targets:
        if target.status == TargetStatus.PENDING and not (state.paused or state.awaiting_approval):
            hosts.start(state, target, now, out)
    _take_over_shift_dispatch(state, now, out)
    _next_step_if_due(state, now, out)
    _hold_deadline_while_paused(state, now, out)
    statuses = [t.status for t in targets]
    if TargetStatus.IN_PROGRESS in statuses or TargetStatus.PENDING in statuses:
        return
    if TargetStatus.FAILED in statuses:
        shift_back(state, out)
        message = "The deployment failed: a lifecycle event of the target failed"
        fail(state, ErrorCode.HEALTH_CONSTRAINTS, message, now, out)
    elif TargetStatus.READY in statuses:
        shift_waits.enter_ready(state, now, out)
    elif state.terminate_wait is not None:
        shift_waits.wait_then_retire(state, now, out)
    elif state.bake_seconds > 0:
        state.bake_until = now + state.bake_seconds
        move(state, DeploymentStatus.BAKING, now, out)
    else:
        move(state, DeploymentStatus.SUCCEEDED, now, out)


def shifted(state: DeploymentState, report: TrafficShifted, now: float, out: Outcome) -> None:
    """The router's answer to a ShiftTraffic action."""
    target = state.targets.get(report.target_id)
    current = target.current() if target else None
    if target is None or current is None or current.name != SHIFT_EVENT:
        return  # a shift back after the event ended: nothing to decide
    if not report.succeeded:
        message = f"Traffic could not be shifted to {report.target_weight}%: {report.message}"
        hosts.fail_current(state, report.target_id, message, now, out)
        return
    if report.target_weight == 100 and state.shift_weight == 100:
        state.shift_next_at = None
        done = Completed(report.target_id, SHIFT_EVENT, succeeded=True)
        hosts.completed(state, done, now, out)
        _take_over_shift_dispatch(state, now, out)


def _take_over_shift_dispatch(state: DeploymentState, now: float, out: Outcome) -> None:
    """A Dispatch of AllowTraffic starts the schedule instead of going to the runner."""
    for action in list(out.actions):
        if isinstance(action, Dispatch) and action.event == SHIFT_EVENT:
            out.actions.remove(action)
            target = state.targets[action.target_id]
            current = target.current()
            assert current is not None
            current.status = LifecycleEventStatus.IN_PROGRESS
            current.start_time = now
            state.shift_started = now
            _shift_to(state, target, _steps(state)[0], now, out)


def _steps(state: DeploymentState) -> tuple[schedule.ShiftStep, ...]:
    routing = schedule.parse_routing(state.routing or {"type": "AllAtOnce"})
    return schedule.steps(routing, state.minute_seconds)


def _shifting(state: DeploymentState) -> TargetState | None:
    """The target whose AllowTraffic (the shift) is under way, if any."""
    for target in state.targets.values():
        current = target.current()
        if target.in_flight and current is not None and current.name == SHIFT_EVENT:
            return target
    return None


def _next_step_if_due(state: DeploymentState, now: float, out: Outcome) -> None:
    if state.shift_next_at is None or now < state.shift_next_at or state.paused:
        return  # a paused shift holds where it is until resumed
    target = _shifting(state)
    # The step after the weight in force, even when ticks came late: no step is skipped.
    step = next((s for s in _steps(state) if s.target_weight > state.shift_weight), None)
    if target is not None and step is not None:
        _shift_to(state, target, step, now, out)


def _hold_deadline_while_paused(state: DeploymentState, now: float, out: Outcome) -> None:
    """A pause between steps may last any time: the shift event's deadline is lifted
    while paused and set again, from the next step, once resumed."""
    target = _shifting(state)
    if target is None or state.shift_next_at is None:
        return  # the last step is out: the router's answer is due as usual
    if state.paused and target.deadline is not None:
        target.deadline = None
        out.touch(target.target_id)
    elif not state.paused and target.deadline is None:
        target.deadline = max(state.shift_next_at, now) + state.event_timeout
        out.touch(target.target_id)


def _shift_to(
    state: DeploymentState,
    target: TargetState,
    step: schedule.ShiftStep,
    now: float,
    out: Outcome,
) -> None:
    following = next((s for s in _steps(state) if s.offset > step.offset), None)
    state.shift_weight = step.target_weight
    # Each step keeps its whole interval from when it was applied, so a late tick
    # delays the rest of the schedule rather than shortening an interval.
    state.shift_next_at = None if following is None else now + following.offset - step.offset
    # The event may run as long as the schedule, plus the usual time for its last step.
    target.deadline = (state.shift_next_at or now) + state.event_timeout
    out.touch(target.target_id)
    out.actions.append(ShiftTraffic(target.target_id, step.target_weight))


def shift_back(state: DeploymentState, out: Outcome) -> None:
    """Traffic returns to the original revision (it may have moved in part), and a
    replacement installed for it is taken away."""
    if state.shift_weight > 0 or _installed(state):
        state.shift_weight = 0
        state.shift_next_at = None
        for target in state.targets.values():
            out.actions.append(ShiftTraffic(target.target_id, 0))
        out.changed = True


def _installed(state: DeploymentState) -> bool:
    """Whether a replacement was (or is being) installed: its Install has begun."""
    for target in state.targets.values():
        for event in target.events:
            if event.name != INSTALL_EVENT:
                continue
            started = event.status not in (
                LifecycleEventStatus.PENDING,
                LifecycleEventStatus.SKIPPED,
            )
            if started or (target.in_flight and target.current() is event):
                return True
    return False


def waiting_for_continue(state: DeploymentState, now: float, out: Outcome) -> None:
    """Status Ready: a stop, or the end of the wait, stops the deployment and takes
    the replacement away (traffic never moved, so no rollback follows a timeout)."""
    if shift_waits.ready_ran_out(state, now) and not state.stop_requested:
        state.stop_requested = True
        state.stop_reason = StopReason.READY_TIMEOUT
        state.error_code = ErrorCode.TIMEOUT
        state.error_message = "Nobody continued the deployment before its ready wait ran out"
    if state.stop_requested:
        _end_stopped(state, list(state.targets.values()), now, out)


def _stop_in_termination_wait(state: DeploymentState, now: float, out: Outcome) -> None:
    """Every event succeeded and the new revision serves: a stop that asks for a
    rollback puts traffic back on the original; any other keeps the new revision, and
    the original is retired at once, as CodeDeploy does."""
    if wants_rollback(state):
        shift_back(state, out)
    else:
        shift_waits.retire(state, out)
    move(state, DeploymentStatus.STOPPED, now, out)


def _end_stopped(
    state: DeploymentState, targets: list[TargetState], now: float, out: Outcome
) -> None:
    shift_back(state, out)  # first: it reads which events began
    hosts.skip_pending(state, now, out)
    for target in targets:
        if target.in_flight or target.status == TargetStatus.READY:
            hosts.end(target, TargetStatus.FAILED, now)
            out.touch(target.target_id)
    move(state, DeploymentStatus.STOPPED, now, out)
