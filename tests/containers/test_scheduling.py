"""The reconciler's pure decisions: counts, plans, back-off, stability, health checks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipyard.containers.ecs.health import HEALTHY, UNHEALTHY, UNKNOWN, CheckState, task_health
from shipyard.containers.ecs.scheduling import (
    MAX_BACKOFF,
    PENDING,
    RUNNING,
    STABILIZING,
    STEADY,
    Backoff,
    TaskView,
    computed_desired,
    plan,
    stability,
)

CHECK = {"interval": 5, "timeout": 2, "retries": 3, "startPeriod": 10}


def running(n: int, healthy: bool = True) -> list[TaskView]:
    return [TaskView(f"t{i}", RUNNING, healthy, float(i)) for i in range(n)]


def test_computed_desired_count() -> None:
    assert computed_desired(3, 100.0, "ACTIVE") == 3
    assert computed_desired(3, 34.0, "PRIMARY") == 2  # ceil(1.02)
    assert computed_desired(3, 33.333333333, "ACTIVE") == 1
    assert computed_desired(10, 0.0, "ACTIVE") == 0
    assert computed_desired(10, 100.0, "DRAINING") == 0


@given(st.integers(0, 1000), st.floats(0, 100))
def test_computed_desired_is_within_bounds(desired: int, scale: float) -> None:
    count = computed_desired(desired, scale, "ACTIVE")
    assert 0 <= count <= desired
    assert count >= desired * scale / 100 - 1e-6


def test_plan_starts_what_is_missing_unless_backing_off() -> None:
    assert plan(3, running(1), Backoff(), 10.0).start == 2
    waiting = Backoff().failed(10.0)
    assert plan(3, running(1), waiting, 10.5).start == 0
    assert plan(3, running(1), waiting, 11.0).start == 2


def test_plan_stops_the_least_useful_tasks_first() -> None:
    tasks = [
        TaskView("old-healthy", RUNNING, True, 1.0),
        TaskView("new-healthy", RUNNING, True, 3.0),
        TaskView("unhealthy", RUNNING, False, 0.5),
        TaskView("starting", PENDING, False, 2.0),
    ]
    assert plan(2, tasks, Backoff(), 0.0).stop == ("starting", "unhealthy")
    assert plan(1, tasks, Backoff(), 0.0).stop == ("starting", "unhealthy", "new-healthy")
    assert plan(4, tasks, Backoff(), 0.0) == plan(4, tasks, Backoff(), 0.0)
    assert plan(4, tasks, Backoff(), 0.0).stop == ()


def test_backoff_doubles_up_to_a_ceiling() -> None:
    backoff = Backoff()
    waits = []
    for _ in range(10):
        backoff = backoff.failed(100.0)
        waits.append(backoff.wait(100.0))
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(waits) == MAX_BACKOFF


def test_stability() -> None:
    assert stability(3, running(3)).stability == STEADY
    assert stability(0, []).stability == STEADY
    assert stability(3, running(2)).stability == STABILIZING
    assert stability(3, running(3, healthy=False)).stability == STABILIZING
    counts = stability(3, [*running(2), TaskView("p", PENDING, False, 9.0)])
    assert (counts.running, counts.pending, counts.stability) == (2, 1, STABILIZING)


def test_health_check_verdicts() -> None:
    state = CheckState()
    assert state.due(0.0)
    failed = state.after(CHECK, False, started_at=0.0, now=1.0)  # within startPeriod
    assert (failed.status, failed.failures, failed.next_at) == (UNKNOWN, 0, 6.0)
    for now in (11.0, 16.0):
        failed = failed.after(CHECK, False, started_at=0.0, now=now)
    assert (failed.status, failed.failures) == (UNKNOWN, 2)
    assert failed.after(CHECK, False, 0.0, 21.0).status == UNHEALTHY
    assert failed.after(CHECK, True, 0.0, 21.0) == CheckState(HEALTHY, 0, 26.0)
    assert CheckState.from_doc(failed.to_doc()) == failed
    assert not failed.due(failed.next_at - 0.1)


def test_task_health() -> None:
    assert task_health([]) == UNKNOWN
    assert task_health([HEALTHY, HEALTHY]) == HEALTHY
    assert task_health([HEALTHY, UNKNOWN]) == UNKNOWN
    assert task_health([HEALTHY, UNHEALTHY]) == UNHEALTHY
