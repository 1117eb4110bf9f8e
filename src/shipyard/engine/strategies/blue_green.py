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

from shipyard.engine import hosts, plan
from shipyard.engine.messages import Notify, Outcome, RetireHosts
from shipyard.engine.state import DeploymentState, Label, Phase, StopReason, TargetState
from shipyard.engine.transitions import fail, move
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

ALLOW_EVENTS = ("BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic")
BLOCK_EVENTS = ("BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic")
_ORDER = (Phase.INSTALL, Phase.ALLOW, Phase.BLOCK)


def phase_of(event: str) -> Phase:
    if event in ALLOW_EVENTS:
        return Phase.ALLOW
    if event in BLOCK_EVENTS:
        return Phase.BLOCK
    return Phase.INSTALL


def counted(state: DeploymentState) -> int:
    """The health rule counts the replacement hosts (a rollback installs nothing)."""
    if state.phase != Phase.INSTALL:
        return len(state.targets)
    return sum(t.label == Label.GREEN for t in state.targets.values())


def _waiting(state: DeploymentState, phase: Phase) -> list[TargetState]:
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


def advance(state: DeploymentState, now: float, out: Outcome) -> None:
    """Decide the next step of a blue/green deployment in status InProgress."""
    targets = list(state.targets.values())
    in_flight = [t for t in targets if t.in_flight]
    if state.stop_requested:
        if not in_flight:
            move(state, DeploymentStatus.STOPPED, now, out)
        return
    if state.phase == Phase.INSTALL:
        _install(state, now, out)
    elif state.phase in (Phase.ALLOW, Phase.BLOCK):
        if any(t.status == TargetStatus.FAILED for t in targets):
            if not in_flight:
                message = f"A host failed to {state.phase} traffic"
                fail(state, ErrorCode.HEALTH_CONSTRAINTS, message, now, out)
            return
        waiting = _waiting(state, state.phase)
        for target in waiting:
            hosts.start(state, target, now, out)
        if waiting or in_flight:
            return
        _next_phase(state, now, out)
    elif state.phase == Phase.TERMINATE and now >= (state.terminate_at or 0.0):
        _retire(state, now, out)


def _install(state: DeploymentState, now: float, out: Outcome) -> None:
    installers = [t for t in state.targets.values() if phase_of(t.events[0].name) == Phase.INSTALL]
    total = len(installers)
    if total == 0:
        _next_phase(state, now, out)
        return
    rule = plan.HealthRule.from_config(state.health_rule)
    held = sum(t.status in (TargetStatus.READY, TargetStatus.SUCCEEDED) for t in installers)
    failed = sum(t.status == TargetStatus.FAILED for t in installers)
    in_flight = sum(t.in_flight for t in installers)
    pending = [t for t in installers if t.status == TargetStatus.PENDING]
    verdict = plan.verdict(rule, total, held, failed, len(pending), in_flight, False)
    if verdict == plan.Verdict.FAILED:
        for target in pending:
            target.status = TargetStatus.SKIPPED
            for event in target.events:
                event.status = LifecycleEventStatus.SKIPPED
            out.touch(target.target_id)
        if in_flight == 0:
            message = "Too many replacement hosts failed to install"
            fail(state, ErrorCode.HEALTH_CONSTRAINTS, message, now, out)
        return
    if verdict == plan.Verdict.CONTINUE:
        if state.paused or state.awaiting_approval:
            return
        healthy = total - failed - in_flight
        for target in pending[: max(0, plan.can_start_more(rule, total, healthy, in_flight))]:
            hosts.start(state, target, now, out)
        return
    # Every replacement host has the revision: traffic may move.
    if state.ready_wait is not None:
        state.ready_until = now + state.ready_wait
        move(state, DeploymentStatus.READY, now, out)
        out.actions.append(Notify("DeploymentReady"))
        for target in installers:
            if target.status == TargetStatus.READY:
                out.actions.append(Notify("InstanceReady", target.target_id))
        return
    _next_phase(state, now, out)


def _next_phase(state: DeploymentState, now: float, out: Outcome) -> None:
    position = _ORDER.index(state.phase) if state.phase in _ORDER else len(_ORDER) - 1
    for phase in _ORDER[position + 1 :]:
        state.phase = phase
        out.changed = True
        waiting = _waiting(state, phase)
        if waiting:
            for target in waiting:
                hosts.start(state, target, now, out)
            return
    # No traffic left to move.
    if state.terminate_wait is not None and not state.is_rollback:
        state.phase = Phase.TERMINATE
        state.terminate_at = now + state.terminate_wait
        return
    move(state, DeploymentStatus.SUCCEEDED, now, out)


def _retire(state: DeploymentState, now: float, out: Outcome) -> None:
    blue = tuple(t.target_id for t in state.targets.values() if t.label == Label.BLUE)
    out.actions.append(RetireHosts(blue))
    move(state, DeploymentStatus.SUCCEEDED, now, out)


def waiting_for_continue(state: DeploymentState, now: float, out: Outcome) -> None:
    """Status Ready: waiting for ContinueDeployment(READY_WAIT)."""
    if state.stop_requested:
        move(state, DeploymentStatus.STOPPED, now, out)
    elif state.ready_until is not None and now >= state.ready_until:
        state.stop_requested = True
        state.stop_reason = StopReason.READY_TIMEOUT
        state.error_code = ErrorCode.TIMEOUT
        state.error_message = "Nobody continued the deployment before its ready wait ran out"
        move(state, DeploymentStatus.STOPPED, now, out)


def continued(state: DeploymentState, wait_type: str, now: float, out: Outcome) -> None:
    """ContinueDeployment: READY_WAIT reroutes now, TERMINATION_WAIT retires now."""
    if wait_type == "READY_WAIT" and state.status == DeploymentStatus.READY:
        move(state, DeploymentStatus.IN_PROGRESS, now, out)
        _next_phase(state, now, out)
    elif wait_type == "TERMINATION_WAIT" and state.phase == Phase.TERMINATE:
        _retire(state, now, out)


def hold(target: TargetState, next_event: str, state: DeploymentState) -> bool:
    """After an event succeeded: whether the target must wait for a later phase."""
    if state.phase is None or phase_of(next_event) == state.phase:
        return False
    target.status = TargetStatus.READY
    target.deadline = None
    return True
