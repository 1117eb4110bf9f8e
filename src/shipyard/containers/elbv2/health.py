"""A target's ELBv2 health (state, reason, description) from what HAProxy reports.

HAProxy has no "initial" state: a target whose health was forced down at registration
and that has not come up yet is ``initial`` for as long as the group's checks need to
call it unhealthy (UnhealthyThresholdCount intervals plus a timeout), ``unhealthy``
after that; one that was up and went down is ``unhealthy`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.containers.elbv2.haproxy_config import HealthCheck, server_name
from shipyard.containers.elbv2.runtime import ServerStat
from shipyard.containers.targets import TargetState
from shipyard.store import elbv2 as store


@dataclass(frozen=True)
class TargetHealth:
    state: TargetState
    reason: str = ""
    description: str = ""


NOT_IN_USE = TargetHealth(
    TargetState.UNUSED,
    "Target.NotInUse",
    "Target group is not configured to receive traffic from the load balancer",
)
DRAINING = TargetHealth(
    TargetState.DRAINING, "Target.DeregistrationInProgress", "Target deregistration is in progress"
)
REGISTERING = TargetHealth(
    TargetState.INITIAL, "Elb.RegistrationInProgress", "Target registration is in progress"
)
CHECKING = TargetHealth(
    TargetState.INITIAL, "Elb.InitialHealthChecking", "Initial health checks in progress"
)
CHECKS_OFF = TargetHealth(
    TargetState.UNAVAILABLE, "Target.HealthCheckDisabled", "Health checks are disabled"
)
UNREADABLE = TargetHealth(
    TargetState.UNAVAILABLE, "Elb.InternalError", "The load balancer could not be reached"
)


def describe(
    row: store.TargetRow,
    in_use: bool,
    stats: dict[str, ServerStat] | None,
    check: HealthCheck,
    now: float,
) -> TargetHealth:
    if row.state == store.DRAINING:
        return DRAINING
    if not in_use:
        return NOT_IN_USE
    if stats is None:
        return UNREADABLE
    stat = stats.get(server_name(row.address, row.port))
    if stat is None or stat.status.startswith("MAINT"):
        return REGISTERING
    if not check.enabled or stat.status == "no check":
        return CHECKS_OFF
    if stat.status.startswith("UP"):
        return TargetHealth(TargetState.HEALTHY)
    if stat.went_down <= REGISTRATION_DOWNS and now - row.since < initial_window(check):
        return CHECKING
    return _failing(stat)


# Registration forces the new server's health down (runtime.py), and HAProxy counts
# that as one UP→DOWN transition (chkdown 1 before any check ran): only a second one
# means the target was up and went down. Counting from 0 made a target whose first
# check came before its container listened "unhealthy" at once, and ECS stopped the
# task (a replacement task set then missed its steady state under load).
REGISTRATION_DOWNS = 1
# However short a rehearsal's scaled clock makes the checks, a starting target has this
# long to come up (a container takes ~0.6 s to start on Podman, more on a busy machine).
MIN_INITIAL_SECONDS = 5.0


def initial_window(check: HealthCheck) -> float:
    """How long a target that has not come up yet is ``initial``, not ``unhealthy``:
    the checks ELBv2 needs to call it unhealthy (UnhealthyThresholdCount intervals
    plus a timeout), and never under MIN_INITIAL_SECONDS."""
    return max(MIN_INITIAL_SECONDS, check.unhealthy * check.interval + check.timeout)


def _failing(stat: ServerStat) -> TargetHealth:
    if stat.check_status == "L7STS":
        return TargetHealth(
            TargetState.UNHEALTHY,
            "Target.ResponseCodeMismatch",
            f"Health checks failed with these codes: [{stat.check_code or '?'}]",
        )
    if stat.check_status in ("L4TOUT", "L6TOUT", "L7TOUT"):
        return TargetHealth(TargetState.UNHEALTHY, "Target.Timeout", "Request timed out")
    if stat.check_status in ("INI", ""):
        return CHECKING
    return TargetHealth(TargetState.UNHEALTHY, "Target.FailedHealthChecks", "Health checks failed")
