"""The deployment state machine, driven input by input with explicit times."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from shipyard.engine import machine, messages, transitions
from shipyard.engine.hosts import new_target
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.engine.state import DeploymentState
from shipyard.model import DeploymentStatus, ErrorCode, LifecycleEventStatus, TargetStatus

ONE_AT_A_TIME = {"type": "MOST_CONCURRENCY", "value": 1}
ALL_AT_ONCE = {"type": "HOST_COUNT", "value": 0}
HALF = {"type": "FLEET_PERCENT", "value": 50}


def new_state(hosts: int, rule: dict[str, object], *, ignore_stop: bool = False) -> DeploymentState:
    names = [f"h{i}" for i in range(hosts)]
    return DeploymentState(
        deployment_id="d-TEST00001",
        status=DeploymentStatus.CREATED,
        health_rule=dict(rule),
        event_timeout=60.0,
        ignore_application_stop_failures=ignore_stop,
        targets={n: new_target(n, IN_PLACE) for n in names},
    )


def dispatched(out: messages.Outcome) -> list[tuple[str, str]]:
    return [(a.target_id, a.event) for a in out.actions if isinstance(a, messages.Dispatch)]


def run_host(state: DeploymentState, host: str, now: float, fail_at: str | None = None) -> None:
    """Acknowledge and complete every event of one host, failing at ``fail_at``."""
    for event in IN_PLACE:
        machine.step(state, messages.Acknowledged(host, event), now)
        ok = event != fail_at
        machine.step(state, messages.Completed(host, event, ok), now)
        if not ok:
            return


def test_one_at_a_time_runs_hosts_in_order_and_events_in_order() -> None:
    state = new_state(3, ONE_AT_A_TIME)
    out = machine.step(state, messages.Start(), 1.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert dispatched(out) == [("h0", "ApplicationStop")]
    seen: list[tuple[str, str]] = []
    for host in ("h0", "h1", "h2"):
        for event in IN_PLACE:
            machine.step(state, messages.Acknowledged(host, event), 2.0)
            out = machine.step(state, messages.Completed(host, event, True), 3.0)
            seen.extend(dispatched(out))
    assert seen[:6] == [("h0", e) for e in IN_PLACE[1:]]
    assert ("h1", "ApplicationStop") in seen
    assert state.status == DeploymentStatus.SUCCEEDED
    assert state.complete_time == 3.0
    assert all(t.status == TargetStatus.SUCCEEDED for t in state.targets.values())


def test_no_instances_fails_at_once() -> None:
    state = new_state(0, ONE_AT_A_TIME)
    out = machine.step(state, messages.Start(), 1.0)
    assert state.status == DeploymentStatus.FAILED
    assert state.error_code == ErrorCode.NO_INSTANCES
    assert messages.Finished(DeploymentStatus.FAILED) in out.actions


def test_invalid_health_constraints_fail_before_touching_hosts() -> None:
    state = new_state(10, {"type": "FLEET_PERCENT", "value": 95})
    out = machine.step(state, messages.Start(), 1.0)
    assert state.error_code == ErrorCode.HEALTH_CONSTRAINTS_INVALID
    assert dispatched(out) == []


def test_failed_script_skips_the_rest_and_fails_one_at_a_time() -> None:
    state = new_state(3, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 1.0)
    run_host(state, "h0", 2.0, fail_at="BeforeInstall")
    h0 = state.targets["h0"]
    assert h0.status == TargetStatus.FAILED
    statuses = {e.name: e.status for e in h0.events}
    assert statuses["BeforeInstall"] == LifecycleEventStatus.FAILED
    assert statuses["Install"] == LifecycleEventStatus.SKIPPED
    assert state.status == DeploymentStatus.FAILED
    assert state.error_code == ErrorCode.HEALTH_CONSTRAINTS
    assert state.targets["h2"].status == TargetStatus.SKIPPED


def test_one_at_a_time_failure_on_last_host_still_succeeds() -> None:
    state = new_state(3, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 1.0)
    run_host(state, "h0", 2.0)
    run_host(state, "h1", 3.0)
    run_host(state, "h2", 4.0, fail_at="ValidateService")
    assert state.status == DeploymentStatus.SUCCEEDED


def test_all_at_once_dispatches_every_host_and_needs_one_success() -> None:
    state = new_state(4, ALL_AT_ONCE)
    out = machine.step(state, messages.Start(), 1.0)
    assert sorted(dispatched(out)) == [(f"h{i}", "ApplicationStop") for i in range(4)]
    for i in range(3):
        run_host(state, f"h{i}", 2.0, fail_at="AfterInstall")
    assert state.status == DeploymentStatus.IN_PROGRESS
    run_host(state, "h3", 3.0)
    assert state.status == DeploymentStatus.SUCCEEDED


def test_half_at_a_time_tolerates_one_failure_of_four_but_not_two() -> None:
    state = new_state(4, HALF)  # minimum 2 healthy, at most 2 at a time
    out = machine.step(state, messages.Start(), 1.0)
    assert len(dispatched(out)) == 2
    run_host(state, "h0", 2.0, fail_at="Install")
    # h1 still runs, and healthy (2) is at the minimum: nothing more may start.
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert state.targets["h2"].status == TargetStatus.PENDING
    run_host(state, "h1", 3.0)
    assert state.targets["h2"].status == TargetStatus.IN_PROGRESS
    assert state.targets["h3"].status == TargetStatus.PENDING
    run_host(state, "h2", 4.0, fail_at="AfterInstall")
    assert state.status == DeploymentStatus.FAILED
    assert state.error_code == ErrorCode.HEALTH_CONSTRAINTS
    assert state.targets["h3"].status == TargetStatus.SKIPPED


def test_failing_deployment_waits_for_in_flight_hosts() -> None:
    state = new_state(3, {"type": "HOST_COUNT", "value": 1})  # 2 at a time, minimum 1
    machine.step(state, messages.Start(), 1.0)
    run_host(state, "h0", 2.0, fail_at="Install")
    assert state.targets["h2"].status == TargetStatus.PENDING  # healthy 1 = minimum
    machine.step(state, messages.Acknowledged("h1", "ApplicationStop"), 2.5)
    machine.step(state, messages.Completed("h1", "ApplicationStop", False), 3.0)
    assert state.status == DeploymentStatus.FAILED
    assert state.targets["h2"].status == TargetStatus.SKIPPED


def test_ignore_application_stop_failures_continues() -> None:
    state = new_state(1, ONE_AT_A_TIME, ignore_stop=True)
    machine.step(state, messages.Start(), 1.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 1.0)
    out = machine.step(state, messages.Completed("h0", "ApplicationStop", False), 1.5)
    assert dispatched(out) == [("h0", "DownloadBundle")]
    assert state.targets["h0"].events[0].status == LifecycleEventStatus.FAILED


def test_deadline_fails_the_event_on_tick() -> None:
    state = new_state(1, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 1.0)
    assert machine.step(state, messages.Tick(), 60.0).changed is False
    machine.step(state, messages.Tick(), 61.0)
    event = state.targets["h0"].events[0]
    assert event.status == LifecycleEventStatus.FAILED
    assert event.diagnostics and "within 60 seconds" in event.diagnostics["message"]
    assert state.status == DeploymentStatus.FAILED


def test_stop_waits_for_in_flight_event_then_stops() -> None:
    state = new_state(2, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 1.0)
    machine.step(state, messages.StopRequested(), 2.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    out = machine.step(state, messages.Completed("h0", "ApplicationStop", True), 3.0)
    assert dispatched(out) == []
    assert state.status == DeploymentStatus.STOPPED
    assert state.error_code == ErrorCode.MANUAL_STOP
    assert state.targets["h1"].status == TargetStatus.SKIPPED


def test_terminal_state_is_frozen_and_stale_inputs_ignored() -> None:
    state = new_state(1, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 0.0)
    run_host(state, "h0", 1.0)
    assert state.status == DeploymentStatus.SUCCEEDED
    for event in (messages.StopRequested(), messages.Tick(), messages.Start()):
        assert machine.step(state, event, 5.0).changed is False
    state2 = new_state(1, ONE_AT_A_TIME)
    machine.step(state2, messages.Start(), 0.0)
    out = machine.step(state2, messages.Completed("h0", "Install", True), 1.0)
    assert not out.changed  # not the current event


@pytest.mark.parametrize("status", list(DeploymentStatus))
def test_transition_table_covers_every_status(status: DeploymentStatus) -> None:
    assert status in transitions.TRANSITIONS


def test_stop_withdraws_commands_no_agent_has_picked_up() -> None:
    state = new_state(2, ALL_AT_ONCE)
    machine.step(state, messages.Start(), 0.0)
    run_host(state, "h0", 1.0)  # h0 done; h1 never acknowledged its first event
    assert state.status == DeploymentStatus.IN_PROGRESS
    machine.step(state, messages.StopRequested(), 2.0)
    assert state.status == DeploymentStatus.STOPPED
    assert state.targets["h1"].status == TargetStatus.SKIPPED
    late = machine.step(state, messages.Acknowledged("h1", "ApplicationStop"), 3.0)
    assert not late.changed


def test_emergency_stop_overrides_an_earlier_stop_with_rollback() -> None:
    state = new_state(1, ONE_AT_A_TIME)
    state.auto_rollback_events = ["DEPLOYMENT_STOP_ON_REQUEST"]
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 1.0)
    machine.step(state, messages.StopRequested(rollback=True), 2.0)
    out = machine.step(state, messages.StopRequested(rollback=False, abandon=True), 3.0)
    assert state.status == DeploymentStatus.STOPPED
    assert not any(isinstance(a, messages.StartRollback) for a in out.actions)
    assert state.targets["h0"].status == TargetStatus.FAILED


def test_pause_holds_new_hosts_and_resume_goes_on() -> None:
    state = new_state(2, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 0.0)
    machine.step(state, messages.Paused(), 0.5)
    run_host(state, "h0", 1.0)  # the host in flight finishes
    assert state.targets["h1"].status == TargetStatus.PENDING
    assert state.status == DeploymentStatus.IN_PROGRESS
    out = machine.step(state, messages.Resumed(), 2.0)
    assert dispatched(out) == [("h1", "ApplicationStop")]


def test_approval_gates_the_first_host() -> None:
    state = new_state(1, ALL_AT_ONCE)
    state.awaiting_approval = True
    out = machine.step(state, messages.Start(), 0.0)
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert dispatched(out) == []
    out = machine.step(state, messages.Approved(), 1.0)
    assert dispatched(out) == [("h0", "ApplicationStop")]


def test_an_agent_waiting_on_its_result_is_handed_the_next_event_acknowledged() -> None:
    state = new_state(2, ALL_AT_ONCE)
    machine.step(state, messages.Start(), 1.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 2.0)
    done = messages.Completed("h0", "ApplicationStop", True, agent_waiting=True)
    out = machine.step(state, done, 3.0)
    assert out.actions == [messages.Dispatch("h0", "DownloadBundle", acknowledged=True)]
    handed = state.targets["h0"].events[1]
    assert handed.status == LifecycleEventStatus.IN_PROGRESS
    assert handed.start_time == 3.0
    # The acknowledgement a stock agent would still send changes nothing.
    assert not machine.step(state, messages.Acknowledged("h0", "DownloadBundle"), 4.0).changed
    assert handed.start_time == 3.0


def test_a_server_event_is_never_handed_to_the_agent() -> None:
    events = ("ApplicationStop", "BlockTraffic", "Install")
    state = new_state(1, ALL_AT_ONCE)
    state.server_events = ["BlockTraffic", "AllowTraffic"]  # as the Server platform says
    state.targets = {"h0": new_target("h0", events)}
    machine.step(state, messages.Start(), 1.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 2.0)
    done = messages.Completed("h0", "ApplicationStop", True, agent_waiting=True)
    out = machine.step(state, done, 3.0)
    assert out.actions == [messages.Dispatch("h0", "BlockTraffic", acknowledged=False)]
    assert state.targets["h0"].events[1].status == LifecycleEventStatus.PENDING


def test_a_host_moving_on_leaves_the_deployment_decision_as_it_was() -> None:
    """Completing a middle event starts no other host and moves no status."""
    state = new_state(3, ONE_AT_A_TIME)
    machine.step(state, messages.Start(), 1.0)
    machine.step(state, messages.Acknowledged("h0", "ApplicationStop"), 2.0)
    out = machine.step(state, messages.Completed("h0", "ApplicationStop", True), 3.0)
    assert dispatched(out) == [("h0", "DownloadBundle")]
    assert state.status == DeploymentStatus.IN_PROGRESS
    assert [t.status for t in state.targets.values()] == [
        TargetStatus.IN_PROGRESS,
        TargetStatus.PENDING,
        TargetStatus.PENDING,
    ]


@pytest.mark.parametrize("rule", [ONE_AT_A_TIME, HALF, ALL_AT_ONCE])
@pytest.mark.parametrize("seed", range(6))
def test_kept_status_counts_match_a_recount_after_every_step(
    rule: dict[str, object], seed: int
) -> None:
    """In place keeps its per-status counts from step to step (status_tally.py) rather
    than recounting every host: after any mix of results, silent hosts, ticks and a
    stop, they are what a recount gives."""
    rng = random.Random(seed)
    state = new_state(8, rule)
    machine.step(state, messages.Start(), 1.0)
    now = 2.0
    for _ in range(400):
        if state.status != DeploymentStatus.IN_PROGRESS:
            break
        running = [t for t in state.targets.values() if t.in_flight and t.current()]
        roll = rng.random()
        if roll < 0.02 and not state.stop_requested:
            event: messages.Input = messages.StopRequested(rollback=False, abandon=False)
        elif roll < 0.05 and running:
            event = messages.AgentSilent(rng.choice(running).target_id, 90.0)
        elif roll < 0.08:
            event = messages.Tick()
        elif running:
            target = rng.choice(running)
            current = target.current()
            assert current is not None
            if current.status == LifecycleEventStatus.PENDING:
                event = messages.Acknowledged(target.target_id, current.name)
            else:
                event = messages.Completed(target.target_id, current.name, rng.random() > 0.1)
        else:
            event = messages.Tick()
        now += 1.0
        machine.step(state, event, now)
        if state.tally is not None:
            recount = Counter(t.status for t in state.targets.values())
            assert +state.tally.counts == recount
    assert state.tally is not None  # the counts were kept, and checked
