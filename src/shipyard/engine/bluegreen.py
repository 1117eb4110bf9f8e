"""Blue/green deployments to servers, in phases (reference §3.4 and §4.3).

    install    replacement (green) hosts install the revision, scheduled by the
               health rule; each then holds, Ready, before its traffic events
    (ready)    with a ready wait, the deployment sits in Ready until
               ContinueDeployment(READY_WAIT), or is Stopped when the wait runs out
    allow      every host with traffic to receive runs BeforeAllowTraffic,
               AllowTraffic, AfterAllowTraffic, all at once
    block      every host with traffic to give up runs BeforeBlockTraffic,
               BlockTraffic, AfterBlockTraffic, all at once
    terminate  TERMINATE: after the termination wait (or ContinueDeployment
               (TERMINATION_WAIT)) the original hosts are retired; KEEP_ALIVE ends at block

A rollback is the same machine with the roles swapped and no install: the original
hosts allow, the replacement hosts block. Pure like the rest of the machine.
"""

from __future__ import annotations

from collections.abc import Callable

from shipyard.engine import plan
from shipyard.engine.messages import Dispatch, Notify, RetireHosts
from shipyard.engine.state import DeploymentState, TargetState
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

ALLOW_EVENTS = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
BLOCK_EVENTS = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
PHASES = ("install", "allow", "block", "terminate")

Move = Callable[[DeploymentStatus], None]


def phase_of(event: str) -> str:
    if event in ALLOW_EVENTS:
        return "allow"
    if event in BLOCK_EVENTS:
        return "block"
    return "install"


def _waiting(state: DeploymentState, phase: str) -> list[TargetState]:
    """Targets whose next event belongs to ``phase`` and that are not running it."""
    found = []
    for target in state.targets.values():
        current = target.current()
        if target.in_flight or current is None:
            continue
        if target.status in (TargetStatus.FAILED, TargetStatus.SKIPPED):
            continue
        if phase_of(current.name) == phase:
            found.append(target)
    return found


def _start(target: TargetState, now: float, timeout: float, actions: list[object]) -> None:
    current = target.current()
    assert current is not None
    first = current is target.events[0]
    target.status = TargetStatus.IN_PROGRESS
    target.last_updated = now
    target.deadline = now + timeout
    actions.append(Dispatch(target.target_id, current.name))
    if first:
        actions.append(Notify("InstanceStart", target.target_id))


def advance(
    state: DeploymentState,
    now: float,
    actions: list[object],
    changed: set[str],
    move: Move,
    fail: Callable[[ErrorCode, str], None],
) -> None:
    """Decide the next step of a blue/green deployment in status InProgress."""
    targets = list(state.targets.values())
    in_flight = [t for t in targets if t.in_flight]
    if state.stop_requested:
        if not in_flight:
            move(DeploymentStatus.STOPPED)
        return
    if state.phase == "install":
        _install(state, now, actions, changed, move, fail)
    elif state.phase in ("allow", "block"):
        if any(t.status == TargetStatus.FAILED for t in targets):
            if not in_flight:
                phase = state.phase
                fail(ErrorCode.HEALTH_CONSTRAINTS, f"A host failed to {phase} traffic")
            return
        waiting = _waiting(state, state.phase)
        for target in waiting:
            _start(target, now, state.event_timeout, actions)
            changed.add(target.target_id)
        if waiting or in_flight:
            return
        _next_phase(state, now, actions, changed, move)
    elif state.phase == "terminate" and now >= (state.terminate_at or 0.0):
        _retire(state, actions, move)


def _install(
    state: DeploymentState,
    now: float,
    actions: list[object],
    changed: set[str],
    move: Move,
    fail: Callable[[ErrorCode, str], None],
) -> None:
    installers = [t for t in state.targets.values() if phase_of(t.events[0].name) == "install"]
    total = len(installers)
    if total == 0:
        _next_phase(state, now, actions, changed, move)
        return
    rule = plan.HealthRule.from_config(state.health_rule)
    held = sum(t.status in (TargetStatus.READY, TargetStatus.SUCCEEDED) for t in installers)
    failed = sum(t.status == TargetStatus.FAILED for t in installers)
    in_flight = sum(t.in_flight for t in installers)
    pending = [t for t in installers if t.status == TargetStatus.PENDING]
    verdict = plan.verdict(rule, total, held, failed, len(pending), in_flight, False)
    if verdict == plan.FAILED:
        for target in pending:
            target.status = TargetStatus.SKIPPED
            for event in target.events:
                event.status = LifecycleEventStatus.SKIPPED
            changed.add(target.target_id)
        if in_flight == 0:
            fail(ErrorCode.HEALTH_CONSTRAINTS, "Too many replacement hosts failed to install")
        return
    if verdict == plan.CONTINUE:
        if state.paused or state.awaiting_approval:
            return
        healthy = total - failed - in_flight
        for target in pending[: max(0, plan.can_start_more(rule, total, healthy, in_flight))]:
            _start(target, now, state.event_timeout, actions)
            changed.add(target.target_id)
        return
    # Every replacement host has the revision: traffic may move.
    if state.ready_wait is not None:
        state.ready_until = now + state.ready_wait
        move(DeploymentStatus.READY)
        actions.append(Notify("DeploymentReady"))
        for target in installers:
            if target.status == TargetStatus.READY:
                actions.append(Notify("InstanceReady", target.target_id))
        return
    _next_phase(state, now, actions, changed, move)


def _next_phase(
    state: DeploymentState, now: float, actions: list[object], changed: set[str], move: Move
) -> None:
    order = ["install", "allow", "block"]
    position = order.index(state.phase) if state.phase in order else len(order) - 1
    for phase in order[position + 1 :]:
        state.phase = phase
        if _waiting(state, phase):
            advance_phase_start(state, now, actions, changed)
            return
    # No traffic left to move.
    if state.terminate_wait is not None and not state.is_rollback:
        state.phase = "terminate"
        state.terminate_at = now + state.terminate_wait
        return
    move(DeploymentStatus.SUCCEEDED)


def advance_phase_start(
    state: DeploymentState, now: float, actions: list[object], changed: set[str]
) -> None:
    assert state.phase is not None
    for target in _waiting(state, state.phase):
        _start(target, now, state.event_timeout, actions)
        changed.add(target.target_id)


def _retire(state: DeploymentState, actions: list[object], move: Move) -> None:
    blue = tuple(t.target_id for t in state.targets.values() if t.label == "Blue")
    actions.append(RetireHosts(blue))
    move(DeploymentStatus.SUCCEEDED)


def continue_ready(
    state: DeploymentState, now: float, actions: list[object], changed: set[str], move: Move
) -> None:
    """ContinueDeployment(READY_WAIT): reroute now."""
    move(DeploymentStatus.IN_PROGRESS)
    _next_phase(state, now, actions, changed, move)


def skip_termination_wait(state: DeploymentState, actions: list[object], move: Move) -> None:
    """ContinueDeployment(TERMINATION_WAIT): retire the original hosts now."""
    _retire(state, actions, move)


def hold(target: TargetState, next_event: str, state: DeploymentState) -> bool:
    """After an event succeeded: whether the target must wait for a later phase."""
    if state.phase is None or phase_of(next_event) == state.phase:
        return False
    target.status = TargetStatus.READY
    target.deadline = None
    return True
