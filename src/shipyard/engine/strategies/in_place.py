"""In place: hosts in batches under the minimum-healthy-hosts rule (reference §4.2)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from shipyard.engine import hosts, plan
from shipyard.engine.messages import Outcome
from shipyard.engine.state import DeploymentState, TargetState
from shipyard.engine.transitions import move
from shipyard.model import DeploymentStatus, ErrorCode, TargetStatus

HEALTH_MESSAGE = (
    "The overall deployment failed because too many individual instances failed "
    "deployment, too few healthy instances are available for deployment, or some "
    "instances in your deployment group are experiencing problems."
)

hold = hosts.never_hold


def counted(state: DeploymentState) -> int:
    return len(state.targets)


def advance(state: DeploymentState, now: float, out: Outcome) -> None:
    """Decide what happens next from the targets' counts."""
    if state.stop_requested:
        hosts.skip_pending(state, now, out)
        if hosts.withdraw_unstarted(state, now, out) == 0:
            move(state, DeploymentStatus.STOPPED, now, out)
        return
    targets = state.targets.values()
    rule = plan.HealthRule.from_config(state.health_rule)
    total = len(targets)
    # This runs whenever a host's status changes, so on a large fleet once per host:
    # the counts are kept from step to step (status_tally.py), not recounted.
    counts = state.status_counts(out.changed_targets)
    in_flight = counts[TargetStatus.IN_PROGRESS]
    succeeded = counts[TargetStatus.SUCCEEDED]
    failed = counts[TargetStatus.FAILED]
    waiting = counts[TargetStatus.PENDING]
    last_failed = failed > 0 and not waiting and in_flight == 0 and _last_finished_failed(targets)
    if state.error_code is None:
        verdict = plan.verdict(rule, total, succeeded, failed, waiting, in_flight, last_failed)
        if verdict == plan.Verdict.SUCCEEDED:
            if state.bake_seconds > 0:
                state.bake_until = now + state.bake_seconds
                move(state, DeploymentStatus.BAKING, now, out)
            else:
                move(state, DeploymentStatus.SUCCEEDED, now, out)
            return
        if verdict == plan.Verdict.CONTINUE and (state.paused or state.awaiting_approval):
            return  # hosts in flight finish; no new one starts
        if verdict == plan.Verdict.CONTINUE:
            healthy = total - failed - in_flight
            more = max(0, plan.can_start_more(rule, total, healthy, in_flight)) if waiting else 0
            pending = (t for t in targets if t.status == TargetStatus.PENDING)
            for target in itertools.islice(pending, more):
                hosts.start(state, target, now, out)
            return
        # Failing: start nothing more, let the hosts in flight finish their event.
        state.error_code = ErrorCode.HEALTH_CONSTRAINTS
        state.error_message = HEALTH_MESSAGE
        out.changed = True
        hosts.skip_pending(state, now, out)
    if in_flight == 0:
        move(state, DeploymentStatus.FAILED, now, out)


def _last_finished_failed(targets: Iterable[TargetState]) -> bool:
    """Whether the target that finished last is a failed one (OneAtATime's rule)."""
    finished = [t for t in targets if t.status in (TargetStatus.SUCCEEDED, TargetStatus.FAILED)]
    if not finished:
        return False
    last = max(finished, key=lambda t: t.last_updated)
    return last.status == TargetStatus.FAILED
