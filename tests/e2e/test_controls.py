"""Pause, resume and approval on a real deployment."""

from __future__ import annotations

import time

from tests.e2e.conftest import Fleet, Uploader
from tests.e2e.test_rollback import make_group, start, version_bundle, versions
from tests.support import call_extension, wait_until


def test_pause_between_hosts_then_resume(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1", "web-2"], [], "CodeDeployDefault.OneAtATime")
    deployment_id = start(fleet, upload("v1.zip", version_bundle("v1")))
    call_extension(fleet.server, "ShipyardPauseDeployment", {"deploymentId": deployment_id})
    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert any("Paused" in m for m in info["deploymentStatusMessages"])
    # The host in flight finishes; the other one does not start.
    wait_until(
        lambda: (
            fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"][
                "deploymentOverview"
            ]["Succeeded"]
            == 1
        ),
        "first host done",
    )
    time.sleep(0.5)  # a paused deployment must stay put; give it the chance to move
    overview = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"][
        "deploymentOverview"
    ]
    assert (overview["Pending"], overview["InProgress"]) == (1, 0)
    call_extension(fleet.server, "ShipyardResumeDeployment", {"deploymentId": deployment_id})
    assert fleet.wait(deployment_id)["status"] == "Succeeded"
    assert versions(fleet) == ["v1", "v1"]


def test_group_requiring_approval_waits_for_it(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1"], [], "CodeDeployDefault.OneAtATime")
    call_extension(
        fleet.server,
        "ShipyardSetDeploymentGroupOptions",
        {"applicationName": "rb", "deploymentGroupName": "g", "requireApproval": True},
    )
    deployment_id = start(fleet, upload("v1.zip", version_bundle("v1")))
    time.sleep(0.5)  # nothing may start before the approval
    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["deploymentOverview"]["Pending"] == 1
    assert any("approval" in m for m in info["deploymentStatusMessages"])
    call_extension(fleet.server, "ShipyardApproveDeployment", {"deploymentId": deployment_id})
    assert fleet.wait(deployment_id)["status"] == "Succeeded"
