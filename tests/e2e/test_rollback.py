"""Stop and rollback with real agents: automatic rollback on failure and on a stop,
the message when there is nothing to go back to, manual and emergency rollback, and
a host whose agent goes silent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    Uploader,
    fleet_on_server,
    make_bundle,
    make_uploader,
)
from tests.support import call_extension, wait_until

ROLE = "arn:aws:iam::000000000000:role/shipyard"


def version_bundle(
    version: str, *, fail_at: str | None = None, hang_at: str | None = None
) -> bytes:
    hooks = {
        "ApplicationStop": f"echo stop {version} >> {SHARED_ROOT}/events.log",
        "ValidateService": f"echo validate {version} >> {SHARED_ROOT}/events.log",
        "BeforeInstall": "true",
    }
    if fail_at:
        hooks[fail_at] += "\nexit 1"
    if hang_at:
        hooks[hang_at] += "\nsleep 60"
    files: dict[str, str | bytes] = {"site/version.txt": version}
    spec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/www\nhooks:\n"
    )
    for event, body in hooks.items():
        files[f"scripts/{event}.sh"] = f"#!/bin/sh\n{body}\n"
        spec += f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: 120\n"
    files["appspec.yml"] = spec
    return make_bundle(files)


def make_group(fleet: Fleet, hosts: list[str], events: list[str], config: str) -> None:
    fleet.add_hosts(hosts, {"app": "rb"})
    cd = fleet.cd
    cd.create_application(applicationName="rb")
    kwargs: dict[str, Any] = {}
    if events:
        kwargs["autoRollbackConfiguration"] = {"enabled": True, "events": events}
    cd.create_deployment_group(
        applicationName="rb",
        deploymentGroupName="g",
        serviceRoleArn=ROLE,
        deploymentConfigName=config,
        onPremisesInstanceTagFilters=[{"Key": "app", "Value": "rb", "Type": "KEY_AND_VALUE"}],
        **kwargs,
    )


def start(fleet: Fleet, revision: dict[str, Any]) -> str:
    return str(
        fleet.cd.create_deployment(
            applicationName="rb", deploymentGroupName="g", revision=revision
        )["deploymentId"]
    )


def versions(fleet: Fleet) -> list[str]:
    return [h.view(SHARED_ROOT / "www" / "version.txt").read_text() for h in fleet.hosts]


def test_failed_deployment_rolls_back_to_last_good_revision(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1", "web-2"], ["DEPLOYMENT_FAILURE"], "CodeDeployDefault.AllAtOnce")
    good = fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))))
    assert good["status"] == "Succeeded"
    bad = fleet.wait(
        start(fleet, upload("v2.zip", version_bundle("v2", fail_at="ValidateService")))
    )
    assert bad["status"] == "Failed"
    rollback_id = bad["rollbackInfo"]["rollbackDeploymentId"]
    rollback = fleet.wait(rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert rollback["creator"] == "codeDeployRollback"
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == bad["deploymentId"]
    assert rollback["revision"] == good["revision"]
    assert versions(fleet) == ["v1", "v1"]
    group = fleet.cd.get_deployment_group(applicationName="rb", deploymentGroupName="g")
    assert group["deploymentGroupInfo"]["targetRevision"] == good["revision"]


def test_nothing_to_roll_back_to_is_said_plainly(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1"], ["DEPLOYMENT_FAILURE"], "CodeDeployDefault.OneAtATime")
    bad = fleet.wait(
        start(fleet, upload("v1.zip", version_bundle("v1", fail_at="ValidateService")))
    )
    assert bad["status"] == "Failed"
    assert "rollbackDeploymentId" not in bad["rollbackInfo"]
    assert "no successful deployment" in bad["rollbackInfo"]["rollbackMessage"]


def test_stop_with_rollback_goes_back(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1"], [], "CodeDeployDefault.OneAtATime")
    assert fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))))["status"] == "Succeeded"
    slow = start(fleet, upload("v2.zip", version_bundle("v2", hang_at="ValidateService")))
    wait_until(
        lambda: fleet.targets(slow)["web-1"]["lifecycleEvents"][-1]["status"] == "InProgress",
        "ValidateService to hang",
    )
    answer = fleet.cd.stop_deployment(deploymentId=slow, autoRollbackEnabled=True)
    assert answer["status"] == "Pending"  # ValidateService is still running
    # Emergency rollback: do not wait for the hung hook.
    result = call_extension(
        fleet.server,
        "ShipyardRollback",
        {"applicationName": "rb", "deploymentGroupName": "g", "emergency": True},
    )
    assert result["stoppedDeploymentId"] == slow
    stopped = fleet.cd.get_deployment(deploymentId=slow)["deploymentInfo"]
    assert stopped["status"] == "Stopped"
    rollback = fleet.wait(result["rollbackDeploymentId"])
    assert rollback["status"] == "Succeeded", fleet.targets(rollback["deploymentId"])
    events = fleet.targets(rollback["deploymentId"])["web-1"]["lifecycleEvents"]
    assert "ApplicationStop" not in [e["lifecycleEventName"] for e in events]
    assert versions(fleet) == ["v1"]


def test_manual_rollback_after_success_goes_to_the_revision_before(
    fleet: Fleet, upload: Uploader
) -> None:
    make_group(fleet, ["web-1"], [], "CodeDeployDefault.OneAtATime")
    v1 = fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))))
    assert fleet.wait(start(fleet, upload("v2.zip", version_bundle("v2"))))["status"] == "Succeeded"
    result = call_extension(
        fleet.server, "ShipyardRollback", {"applicationName": "rb", "deploymentGroupName": "g"}
    )
    rollback = fleet.wait(result["rollbackDeploymentId"])
    assert rollback["status"] == "Succeeded"
    assert rollback["revision"] == v1["revision"]
    assert versions(fleet) == ["v1"]
    lines = fleet.host("web-1").view(SHARED_ROOT / "events.log").read_text().splitlines()
    assert lines[-2:] == ["stop v2", "validate v1"]


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, agent_timeout=2.0)


def test_silent_agent_fails_its_host_within_the_timeout(quick_fleet: Fleet) -> None:
    fleet = quick_fleet
    upload = make_uploader(fleet.server)
    make_group(fleet, ["web-1", "web-2"], [], "CodeDeployDefault.AllAtOnce")
    fleet.host("web-2").stop()  # the agent is gone before the deployment starts
    started = time.monotonic()
    info = fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))), timeout=30)
    assert info["status"] == "Succeeded"  # AllAtOnce: one good host suffices
    assert time.monotonic() - started < 15
    target = fleet.targets(info["deploymentId"])["web-2"]
    assert target["status"] == "Failed"
    message = target["lifecycleEvents"][0]["diagnostics"]["message"]
    assert "has not been heard from" in message
