"""The deployment status moves: every legal one is in ``TRANSITIONS``; terminal states
have no way out. ``move`` is the only place a deployment's status changes."""

from __future__ import annotations

from shipyard.engine.messages import Finished, Notify, Outcome, StartRollback
from shipyard.engine.state import DeploymentState, StopReason
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus

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

_FINAL_NOTICES = {
    S.SUCCEEDED: "DeploymentSuccess",
    S.FAILED: "DeploymentFailure",
    S.STOPPED: "DeploymentStop",
}


class InvalidTransition(Exception):
    """A status change that TRANSITIONS does not allow (a bug, never user input)."""


def is_frozen(state: DeploymentState) -> bool:
    return not TRANSITIONS.get(state.status)


def move(state: DeploymentState, to: DeploymentStatus, now: float, out: Outcome) -> None:
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


def fail(state: DeploymentState, code: ErrorCode, message: str, now: float, out: Outcome) -> None:
    state.error_code = code
    state.error_message = message
    move(state, S.FAILED, now, out)


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
    if state.stop_reason == StopReason.READY_TIMEOUT:
        return False  # traffic never moved
    if state.stop_reason == StopReason.ALARM:
        return "DEPLOYMENT_STOP_ON_ALARM" in events
    if state.rollback_on_stop is not None:
        return state.rollback_on_stop
    return "DEPLOYMENT_STOP_ON_REQUEST" in events
