"""Rolling back a traffic shift: the deployment itself moves the traffic back to the
original version (on failure, stop, or an alarm while baking), so the automatic
rollback records that instead of launching a redeployment."""

from __future__ import annotations

import pytest

from shipyard.engine import machine, messages, rollback
from shipyard.engine.state import StoredDeployment
from shipyard.model import DeploymentStatus
from tests.engine.test_traffic_shift import (
    ALL_AT_ONCE,
    TARGET,
    canary,
    hook,
    new_state,
    shifted,
    shifts,
)


def _stored(state: object) -> StoredDeployment:
    return StoredDeployment(state, {"revision": {}}, "app", "group")  # type: ignore[arg-type]


def test_a_failure_before_the_shift_needs_no_rollback() -> None:
    state = new_state(ALL_AT_ONCE, rollback_on_failure=True)
    machine.step(state, messages.Start(), 0.0)

    out = machine.step(state, hook("BeforeAllowTraffic", ok=False), 1.0)

    assert state.status == DeploymentStatus.FAILED
    assert shifts(out) == []  # traffic never moved
    assert any(isinstance(a, messages.StartRollback) for a in out.actions)
    message = rollback.automatic(_stored(state), rollback.RollbackSnapshot(None, None, None))
    assert message == "No rollback needed: traffic never left the original version."


def test_a_failure_after_the_shift_moves_traffic_back_and_records_the_rollback() -> None:
    state = new_state(canary(10, 5), rollback_on_failure=True)
    machine.step(state, messages.Start(), 0.0)
    assert shifts(machine.step(state, hook("BeforeAllowTraffic"), 1.0)) == [10]
    machine.step(state, shifted(10), 1.1)
    assert shifts(machine.step(state, messages.Tick(), 60.0)) == [100]
    machine.step(state, shifted(100), 60.1)

    out = machine.step(state, hook("AfterAllowTraffic", ok=False), 61.0)

    assert state.status == DeploymentStatus.FAILED
    assert shifts(out) == [0]
    request = rollback.automatic(_stored(state), rollback.RollbackSnapshot(None, None, None))
    assert request == (
        f"Rolled back: all traffic of {TARGET} shifted back to the original version."
    )


def test_an_alarm_while_baking_moves_the_traffic_back() -> None:
    state = new_state(ALL_AT_ONCE)
    state.bake_seconds = 30.0
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, hook("BeforeAllowTraffic"), 1.0)
    machine.step(state, shifted(100), 1.1)
    machine.step(state, hook("AfterAllowTraffic"), 2.0)
    assert state.status == DeploymentStatus.BAKING

    out = machine.step(state, messages.AlarmFired("errors", "5xx above 1%"), 3.0)

    assert state.status == DeploymentStatus.STOPPED
    assert shifts(out) == [0]
    assert state.shift_weight == 0


def test_a_stop_during_the_shift_records_the_traffic_shifted_back() -> None:
    state = new_state(canary(10, 5))
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, hook("BeforeAllowTraffic"), 1.0)
    machine.step(state, shifted(10), 1.1)

    out = machine.step(state, messages.StopRequested(rollback=True), 2.0)

    assert state.status == DeploymentStatus.STOPPED
    assert shifts(out) == [0]
    message = rollback.automatic(_stored(state), rollback.RollbackSnapshot(None, None, None))
    assert message == f"Rolled back: all traffic of {TARGET} shifted back to the original version."


def test_a_manual_rollback_of_an_idle_lambda_group_is_refused() -> None:
    group = {"deploymentGroupName": "fn", "computePlatform": "Lambda"}
    snapshot = rollback.RollbackSnapshot(group, {"deploymentConfigName": "x"}, None)

    with pytest.raises(rollback.RollbackError, match="no Lambda deployment running"):
        rollback.manual_request("app", group, {}, snapshot, emergency=False)
