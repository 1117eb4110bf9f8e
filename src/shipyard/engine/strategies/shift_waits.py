"""The two waits of a traffic shift with a replacement to install (ECS, reference
codedeploy.md §4.3), pure like the rest of the engine:

    ready        with deploymentReadyOption STOP_DEPLOYMENT, once test traffic reached
                 the replacement the target holds (Ready) before BeforeAllowTraffic and
                 the deployment sits in Ready until ContinueDeployment(READY_WAIT); when
                 the wait runs out the deployment is Stopped.
    termination  after AfterAllowTraffic the original stays in place for the group's
                 terminationWaitTimeInMinutes (or until ContinueDeployment
                 (TERMINATION_WAIT)), then it is retired (RetireHosts, answered by
                 Retired) and the deployment succeeds.

A stop during the termination wait is decided by ``traffic_shift``: traffic goes back
when a rollback is wanted, else the new revision keeps serving.
"""

from __future__ import annotations

from shipyard.engine import hosts
from shipyard.engine.messages import Notify, Outcome, Retired, RetireHosts
from shipyard.engine.state import DeploymentState, Phase, TargetState
from shipyard.engine.transitions import fail, move
from shipyard.model import DeploymentStatus, ErrorCode, TargetStatus

# The event a ready wait holds the target before: traffic is about to move.
READY_BEFORE = "BeforeAllowTraffic"


def hold(target: TargetState, next_event: str, state: DeploymentState) -> bool:
    """After an event succeeded: whether the target waits (Ready) for a continue."""
    if state.ready_wait is None or next_event != READY_BEFORE:
        return False
    if target.events[0].name == READY_BEFORE:
        return False  # nothing was installed first (Lambda): no ready wait
    target.status = TargetStatus.READY
    target.deadline = None
    return True


def enter_ready(state: DeploymentState, now: float, out: Outcome) -> None:
    assert state.ready_wait is not None
    state.ready_until = now + state.ready_wait
    move(state, DeploymentStatus.READY, now, out)
    out.actions.append(Notify("DeploymentReady"))
    for target in state.targets.values():
        if target.status == TargetStatus.READY:
            out.actions.append(Notify("InstanceReady", target.target_id))


def ready_ran_out(state: DeploymentState, now: float) -> bool:
    return state.ready_until is not None and now >= state.ready_until


def continued(state: DeploymentState, wait_type: str, now: float, out: Outcome) -> None:
    """ContinueDeployment: READY_WAIT moves traffic now, TERMINATION_WAIT retires now."""
    if wait_type == "READY_WAIT" and state.status == DeploymentStatus.READY:
        state.ready_wait = None  # used up: the target goes on without holding again
        state.ready_until = None
        move(state, DeploymentStatus.IN_PROGRESS, now, out)
        for target in state.targets.values():
            if target.status == TargetStatus.READY:
                hosts.start(state, target, now, out)
    elif wait_type == "TERMINATION_WAIT" and in_termination_wait(state):
        state.terminate_at = now
        out.changed = True


def in_termination_wait(state: DeploymentState) -> bool:
    return state.phase == Phase.TERMINATE and not state.retiring


def wait_then_retire(state: DeploymentState, now: float, out: Outcome) -> None:
    """Every target succeeded: start the wait, or retire the original once it is over."""
    assert state.terminate_wait is not None
    if state.phase != Phase.TERMINATE:
        state.phase = Phase.TERMINATE
        # Alarms are read while the deployment is in progress: the wait is at least
        # the bake time, so a short deployment cannot succeed before they were read.
        state.terminate_at = now + max(state.terminate_wait, state.bake_seconds)
        out.changed = True
    if not state.retiring and state.terminate_at is not None and now >= state.terminate_at:
        retire(state, out)


def retire(state: DeploymentState, out: Outcome) -> None:
    state.retiring = True
    out.changed = True
    out.actions.append(RetireHosts(tuple(state.targets)))


def retired(state: DeploymentState, report: Retired, now: float, out: Outcome) -> None:
    if not state.retiring or state.status != DeploymentStatus.IN_PROGRESS:
        return  # a stop already ended the deployment, or a repeated answer
    if report.succeeded:
        move(state, DeploymentStatus.SUCCEEDED, now, out)
        return
    message = f"The original revision of {report.target_id} could not be retired: {report.message}"
    fail(state, ErrorCode.ECS_UPDATE_ERROR, message, now, out)
