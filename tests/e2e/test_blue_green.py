"""Blue/green onto replacement hosts with real agents, the in-process traffic router
standing in for the load balancer (the HAProxy runs are in test_traffic_haproxy.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    blue_green_members,
    fleet_on_server,
    make_bundle,
    make_uploader,
)
from tests.e2e.test_shipyard_cli import shipyard
from tests.support import wait_until

ROLE = "arn:aws:iam::000000000000:role/shipyard"
BLUE = ["blue-1", "blue-2"]
GREEN = ["green-1", "green-2"]


@pytest.fixture
def bg_fleet(tmp_path: Path) -> Iterator[Fleet]:
    seed = "web=" + ",".join(BLUE + GREEN)
    yield from fleet_on_server(tmp_path, traffic_router="memory", traffic_address=seed)


def servers(fleet: Fleet) -> dict[str, str]:
    router = fleet.server.services.runner.router
    assert router is not None
    return {s.server: s.admin for s in router.describe("web")}


def bundle(fail_after_allow: bool = False) -> bytes:
    events = ["BeforeInstall", "ValidateService", "BeforeAllowTraffic", "AfterAllowTraffic"]
    spec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/www\nhooks:\n"
    )
    files: dict[str, str | bytes] = {"site/index.html": "green"}
    for event in events:
        body = f"echo {event} >> {SHARED_ROOT}/events.log"
        if fail_after_allow and event == "AfterAllowTraffic":
            body += "\nexit 1"
        files[f"scripts/{event}.sh"] = f"#!/bin/sh\n{body}\n"
        spec += f"  {event}:\n    - location: scripts/{event}.sh\n"
    files["appspec.yml"] = spec
    return make_bundle(files)


def setup(fleet: Fleet, *, rollback: bool = False) -> None:
    fleet.add_hosts(BLUE, {"role": "web"})
    fleet.add_hosts(GREEN, {"role": "next"})
    router = fleet.server.services.runner.router
    assert router is not None
    for name in GREEN:  # the replacement fleet takes no traffic yet
        router.block("web", name, drain_timeout=0.0)
    cd = fleet.cd
    cd.create_application(applicationName="shop")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
        **blue_green_members(rollback=rollback),
    )


def create(fleet: Fleet, revision: dict[str, Any]) -> str:
    return str(
        fleet.cd.create_deployment(
            applicationName="shop",
            deploymentGroupName="web",
            revision=revision,
            targetInstances={
                "tagFilters": [{"Key": "role", "Value": "next", "Type": "KEY_AND_VALUE"}]
            },
        )["deploymentId"]
    )


def info(fleet: Fleet, deployment_id: str) -> dict[str, Any]:
    result: dict[str, Any] = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return result


def test_blue_green_with_ready_wait_and_termination_wait(bg_fleet: Fleet) -> None:
    fleet = bg_fleet
    setup(fleet)
    deployment_id = create(fleet, make_uploader(fleet.server)("app.zip", bundle()))
    wait_until(lambda: info(fleet, deployment_id)["status"] == "Ready", "Ready")
    assert info(fleet, deployment_id)["deploymentOverview"]["Ready"] == 2
    targets = fleet.targets(deployment_id)
    assert {t: targets[t]["instanceLabel"] for t in targets} == {
        "blue-1": "Blue",
        "blue-2": "Blue",
        "green-1": "Green",
        "green-2": "Green",
    }
    green_ids = fleet.cd.list_deployment_targets(
        deploymentId=deployment_id, targetFilters={"ServerInstanceLabel": ["Green"]}
    )["targetIds"]
    assert sorted(green_ids) == GREEN
    # Nothing moved yet: blue serves, green waits.
    assert servers(fleet) == {
        "blue-1": "ready",
        "blue-2": "ready",
        "green-1": "maint",
        "green-2": "maint",
    }

    # The shipyard CLI says why the deployment waits and continues it.
    status = shipyard(fleet, "status", deployment_id)
    assert re.search(r"^Waiting +Ready: the replacement hosts wait", status.stdout, re.M), status
    assert shipyard(fleet, "continue", deployment_id).returncode == 0
    wait_until(
        lambda: info(fleet, deployment_id).get("instanceTerminationWaitTimeStarted") is True,
        "termination wait",
    )
    assert (
        "Waiting to terminate the original hosts" in shipyard(fleet, "status", deployment_id).stdout
    )
    assert servers(fleet) == {
        "blue-1": "maint",
        "blue-2": "maint",
        "green-1": "ready",
        "green-2": "ready",
    }
    events = [
        e["lifecycleEventName"] for e in fleet.targets(deployment_id)["blue-1"]["lifecycleEvents"]
    ]
    assert events == ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    for name in GREEN:
        log = fleet.host(name).view(SHARED_ROOT / "events.log").read_text().split()
        assert log == [
            "BeforeInstall",
            "ValidateService",
            "BeforeAllowTraffic",
            "AfterAllowTraffic",
        ]

    ended = shipyard(fleet, "continue", deployment_id, "--wait-type", "termination")
    assert ended.returncode == 0, ended.stderr
    assert fleet.wait(deployment_id)["status"] == "Succeeded"
    for name in BLUE:  # TERMINATE: the original hosts left the fleet
        instance = fleet.cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
        assert "deregisterTime" in instance


def test_failure_after_reroute_moves_traffic_back_to_blue(bg_fleet: Fleet) -> None:
    fleet = bg_fleet
    setup(fleet, rollback=True)
    revision = make_uploader(fleet.server)("bad.zip", bundle(fail_after_allow=True))
    deployment_id = create(fleet, revision)
    wait_until(lambda: info(fleet, deployment_id)["status"] == "Ready", "Ready")
    fleet.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    failed = fleet.wait(deployment_id)
    assert failed["status"] == "Failed"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    rollback = fleet.wait(rollback_id)
    assert rollback["status"] == "Succeeded", fleet.targets(rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    assert servers(fleet) == {
        "blue-1": "ready",
        "blue-2": "ready",
        "green-1": "maint",
        "green-2": "maint",
    }
    labels = {t: v["instanceLabel"] for t, v in fleet.targets(rollback_id).items()}
    assert labels == {"blue-1": "Blue", "blue-2": "Blue", "green-1": "Green", "green-2": "Green"}
