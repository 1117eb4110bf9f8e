"""A container health check's verdicts over time (pure: time as input).

Podman runs image health checks from systemd timers, which machines without systemd do
not have, so Shipyard runs each container's ECS healthCheck itself (an exec in the
container every ``interval`` seconds) and keeps the verdict as Docker would: HEALTHY
after a success; UNHEALTHY after ``retries`` failures in a row, failures within
``startPeriod`` of the start not counting; UNKNOWN until the first verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNKNOWN = "UNKNOWN"
HEALTHY = "HEALTHY"
UNHEALTHY = "UNHEALTHY"


@dataclass(frozen=True)
class CheckState:
    status: str = UNKNOWN
    failures: int = 0
    next_at: float = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def after(self, check: dict[str, Any], ok: bool, started_at: float, now: float) -> CheckState:
        next_at = now + float(check["interval"])
        if ok:
            return CheckState(HEALTHY, 0, next_at)
        if now - started_at < float(check["startPeriod"]):
            return CheckState(self.status, self.failures, next_at)
        failures = self.failures + 1
        status = UNHEALTHY if failures >= int(check["retries"]) else self.status
        return CheckState(status, failures, next_at)

    def to_doc(self) -> dict[str, Any]:
        return {"status": self.status, "failures": self.failures, "next_at": self.next_at}

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> CheckState:
        if not doc:
            return cls()
        return cls(str(doc["status"]), int(doc["failures"]), float(doc["next_at"]))


def task_health(statuses: list[str]) -> str:
    """A task's healthStatus from its essential containers' checks: UNHEALTHY if any is,
    HEALTHY if all checked ones are, else UNKNOWN."""
    if UNHEALTHY in statuses:
        return UNHEALTHY
    if statuses and all(status == HEALTHY for status in statuses):
        return HEALTHY
    return UNKNOWN
