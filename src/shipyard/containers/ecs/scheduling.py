"""What a task set should do next, decided from what is (pure: no I/O, time as input).

The reconciler (reconciler.py) reads a task set and its tasks, asks `plan` how many
tasks to start and which to stop, and `stability` what DescribeTaskSets reports. A
task set whose tasks keep failing backs off (`Backoff`): each failure doubles the wait
before the next start, up to `MAX_BACKOFF`, so a broken image never loops the machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Task lastStatus values, in lifecycle order.
PROVISIONING = "PROVISIONING"
PENDING = "PENDING"
RUNNING = "RUNNING"
DEACTIVATING = "DEACTIVATING"
STOPPING = "STOPPING"
STOPPED = "STOPPED"
STARTING = (PROVISIONING, PENDING)

STEADY = "STEADY_STATE"
STABILIZING = "STABILIZING"

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


@dataclass(frozen=True)
class TaskView:
    """What planning needs of one task that is meant to run (desiredStatus RUNNING)."""

    id: str
    last_status: str
    healthy: bool  # by its container health checks and its target groups
    created: float


@dataclass(frozen=True)
class Plan:
    start: int
    stop: tuple[str, ...]


@dataclass(frozen=True)
class Backoff:
    """Consecutive failed tasks of a task set and when it may start the next one."""

    failures: int = 0
    next_start: float = 0.0

    def failed(self, now: float) -> Backoff:
        failures = self.failures + 1
        wait = min(FIRST_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF)
        return Backoff(failures, now + wait)

    def wait(self, now: float) -> float:
        return max(0.0, self.next_start - now)


def computed_desired(desired_count: int, scale_percent: float, status: str) -> int:
    """ECS's computedDesiredCount: ceil(desiredCount * scale / 100); 0 while DRAINING."""
    if status == "DRAINING":
        return 0
    # Rounded first, so that 100 % of 3 is 3 even where 3 * 100.0 / 100 is not exact.
    return math.ceil(round(desired_count * scale_percent / 100.0, 9))


def plan(desired: int, tasks: Sequence[TaskView], backoff: Backoff, now: float) -> Plan:
    """Start what is missing (unless backing off); stop the surplus, the least useful
    first: tasks still starting, then unhealthy ones, then the newest."""
    missing = desired - len(tasks)
    if missing >= 0:
        return Plan(missing if now >= backoff.next_start else 0, ())
    order = sorted(tasks, key=lambda t: (t.last_status == RUNNING, t.healthy, -t.created))
    return Plan(0, tuple(t.id for t in order[:-missing]))


@dataclass(frozen=True)
class Counts:
    running: int
    pending: int
    stability: str


def stability(desired: int, tasks: Sequence[TaskView]) -> Counts:
    """runningCount, pendingCount and stabilityStatus of a task set's live tasks."""
    running = sum(1 for t in tasks if t.last_status == RUNNING)
    pending = sum(1 for t in tasks if t.last_status in STARTING)
    steady = (
        running == desired
        and pending == 0
        and len(tasks) == desired
        and all(t.healthy for t in tasks)
    )
    return Counts(running, pending, STEADY if steady else STABILIZING)
