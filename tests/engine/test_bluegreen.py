"""Blue/green deployments in the pure machine: phases, ready wait, termination wait,
and the rollback shape (roles swapped, no install)."""

from __future__ import annotations

from shipyard.engine import hosts, machine, messages, transitions
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.engine.state import DeploymentState, Phase, Strategy
from shipyard.engine.strategies import blue_green as bluegreen
from shipyard.model import DeploymentStatus, ErrorCode, TargetStatus

GREEN_EVENTS = (*IN_PLACE, *bluegreen.ALLOW_EVENTS)


def new_state(
    *, ready_wait: float | None = None, terminate_wait: float | None = None
) -> DeploymentState:
    targets = {}
    for name in ("g1", "g2"):
        targets[name] = hosts.new_target(name, GREEN_EVENTS, label="Green")
    for name in ("b1", "b2"):
        targets[name] = hosts.new_target(name, bluegreen.BLOCK_EVENTS, label="Blue")
    return DeploymentState(
        deployment_id="d-BLUEGREEN",
        status=DeploymentStatus.CREATED,
        health_rule={"type": "HOST_COUNT", "value": 0},
        event_timeout=60.0,
        strategy=Strategy.BLUE_GREEN,
        phase=Phase.INSTALL,
        ready_wait=ready_wait,
        terminate_wait=terminate_wait,
        targets=targets,
    )


def dispatched(out: messages.Outcome) -> list[tuple[str, str]]:
    return sorted((a.target_id, a.event) for a in out.actions if isinstance(a, messages.Dispatch))


def run(
    state: DeploymentState, host: str, events: tuple[str, ...], now: float
) -> list[tuple[str, str]]:
    """Run ``events`` on ``host``; what was dispatched after the last one."""
    out = messages.Outcome()
    for event in events:
        machine.step(state, messages.Acknowledged(host, event), now)
        out = machine.step(state, messages.Completed(host, event, True), now)
    return dispatched(out)


def test_green_installs_then_traffic_moves_then_blue_blocks() -> None:
    state = new_state()
    out = machine.step(state, messages.Start(), 0.0)
    assert dispatched(out) == [("g1", "ApplicationStop"), ("g2", "ApplicationStop")]
    assert run(state, "g1", IN_PLACE, 1.0) == []
    assert state.targets["g1"].status == TargetStatus.READY  # holds before its traffic events
    allowed = run(state, "g2", IN_PLACE, 2.0)
    assert allowed == [("g1", "BeforeAllowTraffic"), ("g2", "BeforeAllowTraffic")]
    assert state.phase == "allow"
    run(state, "g1", bluegreen.ALLOW_EVENTS, 3.0)
    blocked = run(state, "g2", bluegreen.ALLOW_EVENTS, 3.0)
    assert blocked == [("b1", "BeforeBlockTraffic"), ("b2", "BeforeBlockTraffic")]
    run(state, "b1", bluegreen.BLOCK_EVENTS, 4.0)
    run(state, "b2", bluegreen.BLOCK_EVENTS, 4.0)
    assert state.status == DeploymentStatus.SUCCEEDED  # KEEP_ALIVE: nothing to retire


def test_ready_wait_holds_until_continue_and_times_out_to_stopped() -> None:
    state = new_state(ready_wait=600.0)
    machine.step(state, messages.Start(), 0.0)
    run(state, "g1", IN_PLACE, 1.0)
    run(state, "g2", IN_PLACE, 1.0)
    assert state.status == DeploymentStatus.READY
    out = machine.step(state, messages.Continued("READY_WAIT"), 5.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert dispatched(out) == [("g1", "BeforeAllowTraffic"), ("g2", "BeforeAllowTraffic")]

    late = new_state(ready_wait=600.0)
    machine.step(late, messages.Start(), 0.0)
    run(late, "g1", IN_PLACE, 1.0)
    run(late, "g2", IN_PLACE, 1.0)
    assert machine.step(late, messages.Tick(), 600.0).changed is False
    machine.step(late, messages.Tick(), 601.0)
    assert late.status == DeploymentStatus.STOPPED
    assert late.error_code == ErrorCode.TIMEOUT
    assert not transitions.wants_rollback(late)  # traffic never moved


def test_terminate_waits_then_retires_the_blue_hosts() -> None:
    state = new_state(terminate_wait=3600.0)
    machine.step(state, messages.Start(), 0.0)
    for host in ("g1", "g2"):
        run(state, host, IN_PLACE, 1.0)
    for host in ("g1", "g2"):
        run(state, host, bluegreen.ALLOW_EVENTS, 1.5)
    for host in ("b1", "b2"):
        run(state, host, bluegreen.BLOCK_EVENTS, 2.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert state.phase == "terminate"
    out = machine.step(state, messages.Continued("TERMINATION_WAIT"), 3.0)
    assert messages.RetireHosts(("b1", "b2")) in out.actions
    assert state.status == DeploymentStatus.SUCCEEDED


def test_a_failed_allow_fails_and_asks_for_rollback() -> None:
    state = new_state()
    state.auto_rollback_events = ["DEPLOYMENT_FAILURE"]
    machine.step(state, messages.Start(), 0.0)
    run(state, "g1", IN_PLACE, 1.0)
    run(state, "g2", IN_PLACE, 1.0)
    machine.step(state, messages.Acknowledged("g1", "BeforeAllowTraffic"), 2.0)
    machine.step(state, messages.Completed("g1", "BeforeAllowTraffic", True), 2.0)
    machine.step(state, messages.Acknowledged("g1", "AllowTraffic"), 2.0)
    machine.step(state, messages.Completed("g1", "AllowTraffic", False), 2.5)
    assert state.status == DeploymentStatus.IN_PROGRESS  # g2 still in flight
    run(state, "g2", bluegreen.ALLOW_EVENTS, 3.0)
    assert state.status == DeploymentStatus.FAILED
    assert state.targets["b1"].status == TargetStatus.PENDING  # blue kept serving


def test_no_replacement_hosts_fails_before_touching_blue() -> None:
    state = new_state()
    for name in ("g1", "g2"):
        del state.targets[name]
    out = machine.step(state, messages.Start(), 0.0)
    assert state.error_code == ErrorCode.NO_INSTANCES
    assert dispatched(out) == []


def test_rollback_allows_blue_then_blocks_green() -> None:
    targets = {
        "b1": hosts.new_target("b1", bluegreen.ALLOW_EVENTS, label="Blue"),
        "g1": hosts.new_target("g1", bluegreen.BLOCK_EVENTS, label="Green"),
    }
    state = DeploymentState(
        deployment_id="d-ROLLBACK1",
        status=DeploymentStatus.CREATED,
        health_rule={"type": "FLEET_PERCENT", "value": 50},
        event_timeout=60.0,
        strategy=Strategy.BLUE_GREEN,
        phase=Phase.ALLOW,
        is_rollback=True,
        targets=targets,
    )
    out = machine.step(state, messages.Start(), 0.0)
    assert dispatched(out) == [("b1", "BeforeAllowTraffic")]
    assert run(state, "b1", bluegreen.ALLOW_EVENTS, 1.0) == [("g1", "BeforeBlockTraffic")]
    run(state, "g1", bluegreen.BLOCK_EVENTS, 2.0)
    assert state.status == DeploymentStatus.SUCCEEDED
