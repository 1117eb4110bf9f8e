"""The deployment state machine: ``step(state, input, now) -> Outcome``.

Pure: it reads nothing but its arguments and does no I/O. ``step`` updates the
state it is handed (a value the runner loaded for this one step) and returns the
actions the runner must carry out plus the ids of the targets it changed, so the
runner writes only those rows.

An input first changes what it is about (a host's event, a stop request, a pause);
then the deployment's strategy (``strategies``, chosen by ``state.strategy``) decides
the next move. Legal status moves are in ``transitions.TRANSITIONS``; a terminal
deployment is frozen, and an input for it changes nothing.
"""

from __future__ import annotations

from shipyard.engine import hosts, plan
from shipyard.engine.messages import (
    Acknowledged,
    AgentSilent,
    AlarmFired,
    Approved,
    Completed,
    Continued,
    Dispatch,
    HookReported,
    Input,
    Outcome,
    Paused,
    Resumed,
    Retired,
    Start,
    StopRequested,
    Tick,
    TrafficShifted,
)
from shipyard.engine.state import DeploymentState, Phase, StopReason, Strategy
from shipyard.engine.strategies import blue_green, rules_for, shift_waits, traffic_shift
from shipyard.engine.transitions import fail, is_frozen, move
from shipyard.model import DeploymentStatus, ErrorCode

S = DeploymentStatus


def step(state: DeploymentState, event: Input, now: float) -> Outcome:
    out = _step(state, event, now)
    if state.tally is not None:  # in place's counts follow every step's changes
        state.tally.refresh(state.targets, out.changed_targets)
    return out


def _step(state: DeploymentState, event: Input, now: float) -> Outcome:
    out = Outcome()
    if is_frozen(state):
        return out
    rules = rules_for(state)
    match event:
        case Start():
            _start(state, now, out)
        case Acknowledged(target_id, name):
            hosts.acknowledged(state, target_id, name, now, out)
            return out  # no host's status changed: nothing new to decide
        case Completed():
            hosts.completed(state, event, now, out, rules.hold)
            # A traffic shift must see the dispatch of its shift event (it becomes the
            # schedule's first ShiftTraffic); one target, so the scan costs nothing.
            shifting = state.strategy == Strategy.TRAFFIC_SHIFT
            if _moved_on(out, event.target_id) and not shifting:
                return out  # the host went on to its next event: counts are unchanged
        case HookReported(target_id, name, succeeded, message):
            diagnostics = _hook_diagnostics(name, succeeded, message)
            done = Completed(target_id, name, succeeded, diagnostics)
            hosts.completed(state, done, now, out, rules.hold)
        case TrafficShifted():
            traffic_shift.shifted(state, event, now, out)
        case Retired():
            shift_waits.retired(state, event, now, out)
        case Tick():
            hosts.expire_deadlines(state, now, out, rules.hold)
        case StopRequested(rollback, abandon):
            _stop_requested(state, rollback, abandon, now, out)
        case AlarmFired(name, message):
            if not state.stop_requested:
                state.stop_requested = True
                state.stop_reason = StopReason.ALARM
                state.error_code = ErrorCode.ALARM_ACTIVE
                state.error_message = f"Alarm {name} is active: {message}"
                out.changed = True
        case AgentSilent(target_id, seconds):
            message = (
                f"The agent on {target_id} has not been heard from for {seconds:.0f} "
                "seconds; the host is treated as failed"
            )
            hosts.fail_current(state, target_id, message, now, out, rules.hold)
        case Paused():
            out.changed = not state.paused
            state.paused = True
        case Resumed():
            out.changed = state.paused
            state.paused = False
        case Approved():
            out.changed = state.awaiting_approval
            state.awaiting_approval = False
        case Continued(wait_type):
            if state.strategy == Strategy.BLUE_GREEN:
                blue_green.continued(state, wait_type, now, out)
            elif state.strategy == Strategy.TRAFFIC_SHIFT:
                shift_waits.continued(state, wait_type, now, out)
    if state.status == S.IN_PROGRESS:
        rules.advance(state, now, out)
    elif state.status == S.BAKING:
        _bake(state, now, out)
    elif state.status == S.READY and state.strategy == Strategy.TRAFFIC_SHIFT:
        traffic_shift.waiting_for_continue(state, now, out)
    elif state.status == S.READY:
        blue_green.waiting_for_continue(state, now, out)
    return out


def _moved_on(out: Outcome, target_id: str) -> bool:
    """Whether the step only sent ``target_id`` on to its next event.

    Deciding the deployment's next move needs a scan of every host; it is skipped
    when no host's status changed, since the previous step decided on the same counts.
    """
    return any(isinstance(a, Dispatch) and a.target_id == target_id for a in out.actions)


def _hook_diagnostics(event: str, succeeded: bool, message: str) -> dict[str, str]:
    if succeeded:
        return {}
    text = message or f"The {event} hook reported Failed"
    return {"errorCode": "ScriptFailed", "scriptName": event, "message": text, "logTail": ""}


def _stop_requested(
    state: DeploymentState, rollback: bool | None, abandon: bool, now: float, out: Outcome
) -> None:
    if not state.stop_requested:
        state.stop_requested = True
        state.stop_reason = StopReason.MANUAL
        state.rollback_on_stop = rollback
        state.error_code = ErrorCode.MANUAL_STOP
        state.error_message = "Deployment was stopped by the user"
        out.changed = True
    if abandon:
        # An emergency overrides an earlier stop: it starts its own rollback.
        state.rollback_on_stop = rollback
        hosts.abandon_in_flight(state, now, out)


def _bake(state: DeploymentState, now: float, out: Outcome) -> None:
    """Every host succeeded; alarms are watched until the bake time is over."""
    if state.stop_requested:
        if state.strategy == Strategy.TRAFFIC_SHIFT:
            traffic_shift.shift_back(state, out)  # the alarm's verdict: back to the original
        move(state, S.STOPPED, now, out)
    elif state.bake_until is not None and now >= state.bake_until:
        move(state, S.SUCCEEDED, now, out)


def _start(state: DeploymentState, now: float, out: Outcome) -> None:
    if state.status != S.CREATED:
        return
    state.start_time = now
    total = rules_for(state).counted(state)
    if total == 0:
        fail(
            state,
            ErrorCode.NO_INSTANCES,
            "The deployment failed because no instances were found for your deployment group. "
            "Check your deployment group settings to make sure the tags for your on-premises "
            "instances match what you entered.",
            now,
            out,
        )
        return
    rule = plan.HealthRule.from_config(state.health_rule)
    # A blue/green rollback installs nothing, and a traffic shift has no hosts to keep
    # healthy: only an install is held to the health rule.
    installs = state.strategy == Strategy.IN_PLACE or state.phase == Phase.INSTALL
    if installs and plan.constraints_invalid(rule, total):
        fail(
            state,
            ErrorCode.HEALTH_CONSTRAINTS_INVALID,
            f"The deployment cannot start: {total} instance(s) cannot be deployed to while "
            f"keeping the minimum of {plan.minimum_healthy(rule, total)} healthy instance(s).",
            now,
            out,
        )
        return
    move(state, S.IN_PROGRESS, now, out)
