"""A target's health from HAProxy's stats, time as input: a target that has not come up
yet stays ``initial`` for its window, the one down transition its registration forces
included; one that came up and went down is ``unhealthy`` at once."""

from __future__ import annotations

import pytest

from shipyard.containers.elbv2.haproxy_config import HealthCheck, server_name
from shipyard.containers.elbv2.health import MIN_INITIAL_SECONDS, describe, initial_window
from shipyard.containers.elbv2.runtime import ServerStat
from shipyard.containers.targets import TargetState
from shipyard.store.elbv2 import TargetRow

# Five-second checks on a clock scaled to 1/15 (a rehearsal): 0.33 s apart.
SCALED = HealthCheck(True, "/", None, 5 / 15, 1.0, 2, 2, (200,))
ROW = TargetRow("tg", "127.0.0.1", 8080, "REGISTERED", since=100.0, drain_until=None)


def stat(status: str, check_status: str, went_down: int) -> dict[str, ServerStat]:
    name = server_name(ROW.address, ROW.port)
    return {name: ServerStat(name, status, check_status, "", 0, went_down)}


@pytest.mark.parametrize(
    ("status", "check_status", "went_down", "after", "state", "reason"),
    [
        # Registration forced it down (chkdown 1); its first check found nothing listening.
        ("DOWN", "L4CON", 1, 0.3, TargetState.INITIAL, "Elb.InitialHealthChecking"),
        (
            "DOWN",
            "L4CON",
            1,
            MIN_INITIAL_SECONDS - 0.1,
            TargetState.INITIAL,
            "Elb.InitialHealthChecking",
        ),
        ("DOWN", "L4CON", 0, 1.0, TargetState.INITIAL, "Elb.InitialHealthChecking"),
        # Never up within the window: unhealthy.
        (
            "DOWN",
            "L4CON",
            1,
            MIN_INITIAL_SECONDS + 0.1,
            TargetState.UNHEALTHY,
            "Target.FailedHealthChecks",
        ),
        (
            "DOWN",
            "L7STS",
            1,
            MIN_INITIAL_SECONDS + 0.1,
            TargetState.UNHEALTHY,
            "Target.ResponseCodeMismatch",
        ),
        # Up, then down again: unhealthy at once.
        ("DOWN", "L4CON", 2, 0.5, TargetState.UNHEALTHY, "Target.FailedHealthChecks"),
        ("UP", "L7OK", 1, 0.5, TargetState.HEALTHY, ""),
    ],
)
def test_a_starting_target_has_its_window(
    status: str, check_status: str, went_down: int, after: float, state: TargetState, reason: str
) -> None:
    found = describe(ROW, True, stat(status, check_status, went_down), SCALED, ROW.since + after)
    assert (found.state, found.reason) == (state, reason)


def test_the_window_is_elbv2s_when_longer() -> None:
    real = HealthCheck(True, "/", None, 30.0, 5.0, 5, 2, (200,))
    assert initial_window(real) == 65.0
    assert initial_window(SCALED) == MIN_INITIAL_SECONDS
