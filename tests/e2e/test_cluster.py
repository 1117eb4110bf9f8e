"""Three replicas behind HAProxy on one PostgreSQL (a private server of the test's own),
moto's S3 server as their shared bundle store, and 20 hosts with real agents polling
through HAProxy.

- Two replicas killed (kill -9) one after the other during a deployment: first the one
  sweeping it (the holder of its lease), then whichever took it over. The deployment
  finishes on the last replica, every hook ran exactly once on every host (the hosts'
  own logs), every agent is back polling within seconds, and the work moved on within
  the lease time.
- PostgreSQL itself restarted (immediate stop, cutting every connection) during a
  deployment: the same outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.demo.fleet import can_isolate, stop_all
from tests.conftest import service_missing
from tests.e2e.cluster import HOOKS_LOG, Cluster, cluster, recording_bundle
from tests.e2e.conftest import Fleet, commands_run
from tests.support import wait_until

HOSTS = [f"web-{n}" for n in range(1, 21)]
RAN = ["BeforeInstall", "AfterInstall", "ApplicationStart"]  # ApplicationStop: no earlier revision
EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall"]
EVENTS += ["ApplicationStart", "ValidateService"]
# ValidateService has no hook: the agent says so with ApplicationStart's result, and the
# server completes it without handing it over (runner/agents.py, ShipyardNoopEvents).
AGENT_RAN = EVENTS[:-1]
HOOK_SECONDS = 1.5
LEASE_SECONDS = 3
SETTINGS = {
    "POLL_SECONDS": "5",
    "LEASE_SECONDS": str(LEASE_SECONDS),
    "AGENT_TIMEOUT": "30",
    "REOFFER_SECONDS": "5",
}


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Cluster, Fleet]]:
    if not can_isolate():
        service_missing("private mount namespaces (unshare --mount) for per-host filesystem views")
    with cluster(tmp_path / "cluster", 3, SETTINGS) as running:
        hosts = Fleet(running.front, tmp_path / "hosts", isolate=True)  # type: ignore[arg-type]
        try:
            hosts.add_hosts(HOSTS, {"role": "web"})
            wait_until(lambda: len(_polled_since(running, 0.0)) == len(HOSTS), "every agent's poll")
            yield running, hosts
        finally:
            stop_all(hosts.hosts)


def _polled_since(running: Cluster, since: float) -> set[str]:
    """Agents that polled after ``since`` (on any replica): their latest poll registered
    then (while several replicas are live, each poll registers), or their last contact
    written then (a replica alone registers nothing, and writes last_seen at a poll's
    start when it is 5 s old or older: an upper bound)."""
    rows = running.query(
        "SELECT instance_name FROM agent_polls WHERE started > %s "
        "UNION SELECT name FROM instances WHERE last_seen > %s",
        since,
        since,
    )
    return {row[0] for row in rows}


def _holder(running: Cluster, lease: str) -> tuple[int] | None:
    """(index of the live replica holding ``lease``,), for wait_until (0 is an index)."""
    index = running.holder(lease)
    return None if index is None else (index,)


def hook_lines(hosts: Fleet, deployment_id: str) -> dict[str, list[str]]:
    found = {}
    for host in hosts.hosts:
        path = host.view(HOOKS_LOG)
        lines = path.read_text().splitlines() if path.exists() else []
        found[host.name] = [line.split()[0] for line in lines if line.endswith(deployment_id)]
    return found


def start_deployment(running: Cluster, hosts: Fleet) -> str:
    cd = hosts.cd
    cd.create_application(applicationName="shop")
    # Five hosts at a time: four batches, long enough to kill replicas in.
    cd.create_deployment_config(
        deploymentConfigName="FiveAtATime",
        minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75},
    )
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName="FiveAtATime",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    revision = running.upload("v1.zip", recording_bundle("v1", HOOK_SECONDS))
    deployment_id: str = cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )["deploymentId"]
    return deployment_id


def started_hooks(hosts: Fleet, deployment_id: str) -> int:
    return sum(len(lines) for lines in hook_lines(hosts, deployment_id).values())


def check_exactly_once(running: Cluster, hosts: Fleet, deployment_id: str, story: str) -> None:
    info = hosts.wait(deployment_id, timeout=120)
    assert info["status"] == "Succeeded", (info, story, running.logs())
    assert info["deploymentOverview"]["Succeeded"] == len(HOSTS)
    assert hook_lines(hosts, deployment_id) == {name: RAN for name in HOSTS}, story
    assert commands_run(hosts, deployment_id) == {name: AGENT_RAN for name in HOSTS}, story
    for target in hosts.targets(deployment_id).values():
        events = target["lifecycleEvents"]
        assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
            (event, "Succeeded") for event in EVENTS
        ], story


def test_a_deployment_survives_two_replicas_killed_one_after_the_other(
    fleet: tuple[Cluster, Fleet],
) -> None:
    running, hosts = fleet
    deployment_id = start_deployment(running, hosts)
    lease = f"deployment:{deployment_id}"
    story: list[str] = []
    # 20 hosts x 3 hooks, five hosts at a time: kill in the first batch, then the second.
    for hooks_started in (5, 25):
        wait_until(lambda n=hooks_started: started_hooks(hosts, deployment_id) >= n, "hooks")
        (sweeper,) = wait_until(lambda: _holder(running, lease), f"a replica to hold {lease}")
        killed_at = time.time()
        running.kill(sweeper)
        story.append(f"killed replica {sweeper + 1} after {started_hooks(hosts, deployment_id)}")
        # Another replica takes the deployment over once the lease runs out ...
        (taker,) = wait_until(
            lambda: _holder(running, lease), f"{lease} taken over", timeout=LEASE_SECONDS + 10
        )
        assert taker != sweeper
        moved = time.time() - killed_at
        # ... and every agent polls again, through HAProxy, on a live replica.
        wait_until(
            lambda since=killed_at: len(_polled_since(running, since)) == len(HOSTS),
            "every agent polling again",
            timeout=20,
        )
        back = time.time() - killed_at
        story.append(f"work moved after {moved:.1f} s, every agent polling after {back:.1f} s")
    check_exactly_once(running, hosts, deployment_id, "\n".join(story))
    print("\n".join(story))


def test_a_deployment_survives_postgresql_restarting(fleet: tuple[Cluster, Fleet]) -> None:
    running, hosts = fleet
    deployment_id = start_deployment(running, hosts)
    wait_until(lambda: started_hooks(hosts, deployment_id) >= 20, "hooks")
    restarted_at = time.time()
    running.postgres.restart()
    wait_until(
        lambda: len(_polled_since(running, restarted_at)) == len(HOSTS),
        "every agent polling again",
        timeout=30,
    )
    story = f"every agent polling {time.time() - restarted_at:.1f} s after the restart"
    check_exactly_once(running, hosts, deployment_id, story)
    print(story)
