"""BlockTraffic and AllowTraffic: the lifecycle events the server itself carries
out, on the load balancer, for one host.

A deployment group's ``loadBalancerInfo`` names the backends (target groups and
classic ELBs map to HAProxy backends by name); the host's instance name is its
server name in each of them. These calls block (a drain waits for in-flight
requests), so the runner runs them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.traffic import TrafficError, TrafficRouter

BLOCK = "BlockTraffic"
ALLOW = "AllowTraffic"
# Not a lifecycle event: after a host failed with its traffic blocked, put it back
# if (and only if) its health check passes.
RESTORE = "RestoreTraffic"


@dataclass(frozen=True)
class TrafficJob:
    deployment_id: str
    target_id: str
    event: str  # BLOCK, ALLOW or RESTORE
    backends: tuple[str, ...]
    epoch: int = 0  # the host's dispatch count when the job was made (see Runner)


def run(
    router: TrafficRouter | None,
    job: TrafficJob,
    drain_seconds: float,
    health_seconds: float,
    still_ours: Callable[[], bool] = lambda: True,
) -> tuple[bool, dict[str, str]]:
    """Carry out one job; returns (succeeded, lifecycle diagnostics)."""
    if router is None:
        return False, _diagnostics(
            "UnknownError", "No load balancer is configured on this server (--traffic-router)"
        )
    if not job.backends:
        return False, _diagnostics("UnknownError", "The deployment group names no load balancer")
    try:
        for backend in job.backends:
            if job.event == BLOCK:
                router.block(backend, job.target_id, drain_timeout=drain_seconds)
            elif job.event == ALLOW:
                router.allow(backend, job.target_id, health_timeout=health_seconds)
            else:
                _restore(router, backend, job.target_id, health_seconds, still_ours)
    except TrafficError as exc:
        return False, _diagnostics("UnknownError", f"{job.event} on {job.target_id}: {exc}")
    where = ", ".join(job.backends)
    return True, _diagnostics("Success", f"{job.event} done for {job.target_id} in {where}")


def _restore(
    router: TrafficRouter,
    backend: str,
    server: str,
    health_seconds: float,
    still_ours: Callable[[], bool],
) -> None:
    try:
        router.allow(backend, server, health_timeout=health_seconds)
    except TrafficError:
        # Unhealthy: it must not take traffic. Put it back out, unless another deployment
        # (a rollback, say) has started on the host meanwhile: its traffic is theirs now.
        if still_ours():
            router.block(backend, server, drain_timeout=0.0)
        raise


def _diagnostics(code: str, message: str) -> dict[str, str]:
    return {"errorCode": code, "scriptName": "", "message": message, "logTail": ""}
