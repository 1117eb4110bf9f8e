"""The deployment state machine: ``step(state, input, now) -> actions``.

Pure: it reads nothing but its arguments and does no I/O. ``step`` updates the
state it is handed (a value the runner loaded for this one step) and returns the
actions the runner must carry out plus the ids of the targets it changed, so the
runner writes only those rows.

Legal deployment status moves are all in ``TRANSITIONS``; terminal states have no
way out, and an input for a terminal deployment changes nothing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from shipyard.engine import bluegreen, plan
from shipyard.engine.lifecycle import SERVER_EVENTS, STOP_EVENTS
from shipyard.engine.messages import (
    Acknowledged,
    Action,
    AgentSilent,
    AlarmFired,
    Approved,
    Completed,
    Continued,
    Dispatch,
    Finished,
    Input,
    Notify,
    Paused,
    RestoreTraffic,
    Resumed,
    RetireHosts,
    Start,
    StartRollback,
    StopRequested,
    Tick,
)
from shipyard.engine.state import DeploymentState, EventState, TargetState
from shipyard.model import (
    DeploymentStatus,
    ErrorCode,
    LifecycleEventStatus,
    TargetStatus,
)

S = DeploymentStatus
TRANSITIONS: dict[DeploymentStatus, frozenset[DeploymentStatus]] = {
    S.CREATED: frozenset({S.IN_PROGRESS, S.FAILED, S.STOPPED}),
    S.QUEUED: frozenset({S.IN_PROGRESS, S.FAILED, S.STOPPED}),
    S.IN_PROGRESS: frozenset({S.SUCCEEDED, S.FAILED, S.STOPPED, S.READY, S.BAKING}),
    S.READY: frozenset({S.IN_PROGRESS, S.FAILED, S.STOPPED}),
    S.BAKING: frozenset({S.SUCCEEDED, S.FAILED, S.STOPPED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
}

HEALTH_MESSAGE = (
    "The overall deployment failed because too many individual instances failed "
    "deployment, too few healthy instances are available for deployment, or some "
    "instances in your deployment group are experiencing problems."
)


__all__ = [
    "TRANSITIONS",
    "Acknowledged",
    "Action",
    "AgentSilent",
    "AlarmFired",
    "Approved",
    "Completed",
    "Continued",
    "Dispatch",
    "Finished",
    "Input",
    "InvalidTransition",
    "Notify",
    "Outcome",
    "Paused",
    "RestoreTraffic",
    "Resumed",
    "RetireHosts",
    "Start",
    "StartRollback",
    "StopRequested",
    "Tick",
    "new_target",
    "step",
    "wants_rollback",
]


class InvalidTransition(Exception):
    """A status change that TRANSITIONS does not allow (a bug, never user input)."""


@dataclass
class Outcome:
    actions: list[Action] = field(default_factory=list)
    changed_targets: set[str] = field(default_factory=set)
    changed: bool = False


def step(state: DeploymentState, event: Input, now: float) -> Outcome:
    out = Outcome()
    if state.status not in TRANSITIONS or not TRANSITIONS[state.status]:
        return out  # terminal: frozen
    match event:
        case Start():
            _start(state, now, out)
        case Acknowledged(target_id, name):
            _acknowledged(state, target_id, name, now, out)
            return out  # no host's status changed: nothing new to decide
        case Completed():
            _completed(state, event, now, out)
            if _moved_on(out, event.target_id):
                return out  # the host went on to its next event: counts are unchanged
        case Tick():
            _tick(state, now, out)
        case StopRequested(rollback, abandon):
            if not state.stop_requested:
                state.stop_requested = True
                state.stop_reason = "MANUAL"
                state.rollback_on_stop = rollback
                state.error_code = ErrorCode.MANUAL_STOP
                state.error_message = "Deployment was stopped by the user"
                out.changed = True
            if abandon:
                # An emergency overrides an earlier stop: it starts its own rollback.
                state.rollback_on_stop = rollback
                _abandon_in_flight(state, now, out)
        case AlarmFired(name, message):
            if not state.stop_requested:
                state.stop_requested = True
                state.stop_reason = "ALARM"
                state.error_code = ErrorCode.ALARM_ACTIVE
                state.error_message = f"Alarm {name} is active: {message}"
                out.changed = True
        case AgentSilent(target_id, seconds):
            _agent_silent(state, target_id, seconds, now, out)
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
            _continued(state, wait_type, now, out)
    if state.status == S.IN_PROGRESS and state.phase is not None:
        _advance_blue_green(state, now, out)
    elif state.status == S.IN_PROGRESS:
        _advance(state, now, out)
    elif state.status == S.BAKING:
        _bake(state, now, out)
    elif state.status == S.READY:
        _ready(state, now, out)
    return out


def _moved_on(out: Outcome, target_id: str) -> bool:
    """Whether the step only sent ``target_id`` on to its next event.

    Deciding the deployment's next move needs a scan of every host; it is skipped
    when no host's status changed, since the previous step decided on the same counts.
    """
    return any(isinstance(a, Dispatch) and a.target_id == target_id for a in out.actions)


def _advance_blue_green(state: DeploymentState, now: float, out: Outcome) -> None:
    actions: list[object] = []
    changed: set[str] = set()

    def fail(code: ErrorCode, message: str) -> None:
        _fail(state, code, message, now, out)

    bluegreen.advance(state, now, actions, changed, lambda to: _move(state, to, now, out), fail)
    _merge(out, actions, changed)


def _merge(out: Outcome, actions: list[object], changed: set[str]) -> None:
    out.actions.extend(a for a in actions if isinstance(a, (Dispatch, Notify, RetireHosts)))
    out.changed_targets |= changed
    out.changed = out.changed or bool(actions) or bool(changed)


def _ready(state: DeploymentState, now: float, out: Outcome) -> None:
    """Blue/green waiting for ContinueDeployment(READY_WAIT)."""
    if state.stop_requested:
        _move(state, S.STOPPED, now, out)
    elif state.ready_until is not None and now >= state.ready_until:
        state.stop_requested = True
        state.stop_reason = "READY_TIMEOUT"
        state.error_code = ErrorCode.TIMEOUT
        state.error_message = "Nobody continued the deployment before its ready wait ran out"
        _move(state, S.STOPPED, now, out)


def _continued(state: DeploymentState, wait_type: str, now: float, out: Outcome) -> None:
    actions: list[object] = []
    changed: set[str] = set()
    move = lambda to: _move(state, to, now, out)  # noqa: E731 - a local callback
    if wait_type == "READY_WAIT" and state.status == S.READY:
        bluegreen.continue_ready(state, now, actions, changed, move)
    elif wait_type == "TERMINATION_WAIT" and state.phase == "terminate":
        bluegreen.skip_termination_wait(state, actions, move)
    _merge(out, actions, changed)


def _abandon_in_flight(state: DeploymentState, now: float, out: Outcome) -> None:
    for target in state.targets.values():
        current = target.current()
        if not target.in_flight or current is None:
            continue
        current.status = LifecycleEventStatus.FAILED
        current.end_time = now
        current.diagnostics = {
            "errorCode": "UnknownError",
            "scriptName": "",
            "message": "Abandoned: the deployment was stopped for an emergency rollback",
            "logTail": "",
        }
        _end_target(target, TargetStatus.FAILED, now)
        out.changed_targets.add(target.target_id)
        out.changed = True


def _agent_silent(
    state: DeploymentState, target_id: str, seconds: float, now: float, out: Outcome
) -> None:
    target = state.targets.get(target_id)
    current = target.current() if target else None
    if target is None or current is None or not target.in_flight:
        return
    _completed(
        state,
        Completed(
            target_id,
            current.name,
            succeeded=False,
            diagnostics={
                "errorCode": "UnknownError",
                "scriptName": "",
                "message": f"The agent on {target_id} has not been heard from for "
                f"{seconds:.0f} seconds; the host is treated as failed",
                "logTail": "",
            },
        ),
        now,
        out,
    )


def _bake(state: DeploymentState, now: float, out: Outcome) -> None:
    """Every host succeeded; alarms are watched until the bake time is over."""
    if state.stop_requested:
        _move(state, S.STOPPED, now, out)
    elif state.bake_until is not None and now >= state.bake_until:
        _move(state, S.SUCCEEDED, now, out)


_FINAL_NOTICES = {
    S.SUCCEEDED: "DeploymentSuccess",
    S.FAILED: "DeploymentFailure",
    S.STOPPED: "DeploymentStop",
}


def _move(state: DeploymentState, to: DeploymentStatus, now: float, out: Outcome) -> None:
    if to not in TRANSITIONS[state.status]:
        raise InvalidTransition(f"{state.status} -> {to}")
    started = state.status == S.CREATED
    state.status = to
    out.changed = True
    if started and to == S.IN_PROGRESS:
        out.actions.append(Notify("DeploymentStart"))
    if to in _FINAL_NOTICES:
        state.complete_time = now
        out.actions.append(Finished(to))
        out.actions.append(Notify(_FINAL_NOTICES[to]))
        if wants_rollback(state):
            out.actions.append(StartRollback())
            out.actions.append(Notify("DeploymentRollback"))


def wants_rollback(state: DeploymentState) -> bool:
    """Whether a deployment that just ended should be rolled back (reference §4.4)."""
    if state.is_rollback or state.status == S.SUCCEEDED:
        return False
    touched = any(
        event.status not in (LifecycleEventStatus.PENDING, LifecycleEventStatus.SKIPPED)
        for target in state.targets.values()
        for event in target.events
    )
    if not touched:
        return False  # no host was changed: nothing to roll back
    events = state.auto_rollback_events
    if state.status == S.FAILED:
        return "DEPLOYMENT_FAILURE" in events
    if state.stop_reason == "READY_TIMEOUT":
        return False  # traffic never moved
    if state.stop_reason == "ALARM":
        return "DEPLOYMENT_STOP_ON_ALARM" in events
    if state.rollback_on_stop is not None:
        return state.rollback_on_stop
    return "DEPLOYMENT_STOP_ON_REQUEST" in events


def _fail(state: DeploymentState, code: ErrorCode, message: str, now: float, out: Outcome) -> None:
    state.error_code = code
    state.error_message = message
    _move(state, S.FAILED, now, out)


def _start(state: DeploymentState, now: float, out: Outcome) -> None:
    if state.status != S.CREATED:
        return
    state.start_time = now
    if state.phase == "install":  # blue/green: the health rule counts replacement hosts
        total = sum(t.label == "Green" for t in state.targets.values())
    else:
        total = len(state.targets)
    if total == 0:
        _fail(
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
    # A blue/green rollback installs nothing: no health rule to meet, only traffic to move.
    if state.phase in (None, "install") and plan.constraints_invalid(rule, total):
        _fail(
            state,
            ErrorCode.HEALTH_CONSTRAINTS_INVALID,
            f"The deployment cannot start: {total} instance(s) cannot be deployed to while "
            f"keeping the minimum of {plan.minimum_healthy(rule, total)} healthy instance(s).",
            now,
            out,
        )
        return
    _move(state, S.IN_PROGRESS, now, out)


def _acknowledged(
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
        out.changed_targets.add(target_id)
        out.changed = True


def _completed(state: DeploymentState, done: Completed, now: float, out: Outcome) -> None:
    target = state.targets.get(done.target_id)
    current = target.current() if target else None
    if target is None or current is None or current.name != done.event or not target.in_flight:
        return
    current.start_time = current.start_time or now
    current.end_time = now
    current.diagnostics = dict(done.diagnostics) if done.diagnostics else None
    target.last_updated = now
    target.deadline = None
    out.changed_targets.add(target.target_id)
    out.changed = True
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
        elif bluegreen.hold(target, nxt.name, state):
            pass  # Ready: its next events belong to a later phase
        elif state.stop_requested:
            _end_target(target, TargetStatus.FAILED, now)
        else:
            target.deadline = now + state.event_timeout
            handed = done.agent_waiting and nxt.name not in SERVER_EVENTS
            if handed:  # the same as its acknowledgement arriving now
                nxt.status = LifecycleEventStatus.IN_PROGRESS
                nxt.start_time = now
            out.actions.append(Dispatch(target.target_id, nxt.name, acknowledged=handed))
        return
    current.status = LifecycleEventStatus.FAILED
    _end_target(target, TargetStatus.FAILED, now)
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


def _end_target(target: TargetState, status: TargetStatus, now: float) -> None:
    """Finish a target: every event not yet run is Skipped."""
    for event in target.events:
        if event.status in (LifecycleEventStatus.PENDING, LifecycleEventStatus.IN_PROGRESS):
            event.status = LifecycleEventStatus.SKIPPED
    target.status = status
    target.deadline = None
    target.last_updated = now


def _tick(state: DeploymentState, now: float, out: Outcome) -> None:
    for target in state.targets.values():
        if target.in_flight and target.deadline is not None and target.deadline <= now:
            current = target.current()
            if current is None:
                continue
            _completed(
                state,
                Completed(
                    target.target_id,
                    current.name,
                    succeeded=False,
                    diagnostics={
                        "errorCode": "UnknownError",
                        "scriptName": "",
                        "message": f"No result for {current.name} within "
                        f"{state.event_timeout:.0f} seconds",
                        "logTail": "",
                    },
                ),
                now,
                out,
            )


def _skip_pending(state: DeploymentState, now: float, out: Outcome) -> None:
    for target in state.targets.values():
        if target.status == TargetStatus.PENDING:
            _end_target(target, TargetStatus.SKIPPED, now)
            out.changed_targets.add(target.target_id)
            out.changed = True


def _withdraw_unstarted(state: DeploymentState, now: float, out: Outcome) -> int:
    """Stopping: end the hosts whose current event no agent has picked up yet.
    Returns how many hosts are still running an event."""
    running = 0
    for target in state.targets.values():
        if not target.in_flight:
            continue
        current = target.current()
        if current is not None and current.status == LifecycleEventStatus.PENDING:
            started = any(e.status != LifecycleEventStatus.PENDING for e in target.events)
            _end_target(target, TargetStatus.FAILED if started else TargetStatus.SKIPPED, now)
            out.changed_targets.add(target.target_id)
            out.changed = True
        else:
            running += 1
    return running


def _advance(state: DeploymentState, now: float, out: Outcome) -> None:
    """Decide what happens next from the targets' counts."""
    if state.stop_requested:
        _skip_pending(state, now, out)
        if _withdraw_unstarted(state, now, out) == 0:
            _move(state, S.STOPPED, now, out)
        return
    targets = list(state.targets.values())
    rule = plan.HealthRule.from_config(state.health_rule)
    total = len(targets)
    # This runs whenever a host's status changes, so on a large fleet once per host:
    # one list of statuses, counted by list.count (C), keeps it cheap.
    statuses = [t.status for t in targets]
    in_flight = statuses.count(TargetStatus.IN_PROGRESS)
    succeeded = statuses.count(TargetStatus.SUCCEEDED)
    failed = statuses.count(TargetStatus.FAILED)
    waiting = statuses.count(TargetStatus.PENDING)
    last_failed = failed > 0 and not waiting and in_flight == 0 and _last_finished_failed(targets)
    if state.error_code is None:
        verdict = plan.verdict(rule, total, succeeded, failed, waiting, in_flight, last_failed)
        if verdict == plan.SUCCEEDED:
            if state.bake_seconds > 0:
                state.bake_until = now + state.bake_seconds
                _move(state, S.BAKING, now, out)
            else:
                _move(state, S.SUCCEEDED, now, out)
            return
        if verdict == plan.CONTINUE and (state.paused or state.awaiting_approval):
            return  # hosts in flight finish; no new one starts
        if verdict == plan.CONTINUE:
            healthy = total - failed - in_flight
            more = max(0, plan.can_start_more(rule, total, healthy, in_flight)) if waiting else 0
            pending = (t for t in targets if t.status == TargetStatus.PENDING)
            for target in itertools.islice(pending, more):
                target.status = TargetStatus.IN_PROGRESS
                target.last_updated = now
                target.deadline = now + state.event_timeout
                out.changed_targets.add(target.target_id)
                out.changed = True
                out.actions.append(Dispatch(target.target_id, target.events[0].name))
                out.actions.append(Notify("InstanceStart", target.target_id))
            return
        # Failing: start nothing more, let the hosts in flight finish their event.
        state.error_code = ErrorCode.HEALTH_CONSTRAINTS
        state.error_message = HEALTH_MESSAGE
        out.changed = True
        _skip_pending(state, now, out)
    if in_flight == 0:
        _move(state, S.FAILED, now, out)


def _last_finished_failed(targets: list[TargetState]) -> bool:
    """Whether the target that finished last is a failed one (OneAtATime's rule)."""
    finished = [t for t in targets if t.status in (TargetStatus.SUCCEEDED, TargetStatus.FAILED)]
    if not finished:
        return False
    last = max(finished, key=lambda t: t.last_updated)
    return last.status == TargetStatus.FAILED


def new_target(target_id: str, events: tuple[str, ...], label: str | None = None) -> TargetState:
    return TargetState(
        target_id=target_id, events=[EventState(name) for name in events], label=label
    )
