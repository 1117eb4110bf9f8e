"""Hosts that join a group after its last success (outdatedInstancesStrategy), and
deployments that skip up-to-date hosts (updateOutdatedInstancesOnly) or redeploy the
last good revision (deploymentMode RESTART)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Fleet, Uploader
from tests.e2e.test_rollback import make_group, start, version_bundle, versions
from tests.support import last_seen, wait_until


def deployments_by(fleet: Fleet, creator: str) -> list[dict[str, Any]]:
    ids = fleet.cd.list_deployments(applicationName="rb", deploymentGroupName="g")["deployments"]
    infos = fleet.cd.batch_get_deployments(deploymentIds=ids)["deploymentsInfo"] if ids else []
    return [i for i in infos if i["creator"] == creator]


def test_a_host_joining_later_gets_the_last_good_revision(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1"], [], "CodeDeployDefault.OneAtATime")
    root = fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))))
    assert root["status"] == "Succeeded"
    fleet.add_hosts(["web-2"], {"app": "rb"})  # tagged into the group, agent running
    # The server's sweeper looks for outdated hosts on its own (every few seconds).
    updates = wait_until(
        lambda: deployments_by(fleet, "CodeDeployAutoUpdate"), "an automatic update", every=0.2
    )
    update = fleet.wait(updates[0]["deploymentId"])
    assert update["status"] == "Succeeded"
    assert update["revision"] == root["revision"]
    assert sorted(fleet.targets(update["deploymentId"])) == ["web-2"]
    assert update["relatedDeployments"] == {
        "autoUpdateOutdatedInstancesRootDeploymentId": root["deploymentId"]
    }
    root_now = fleet.cd.get_deployment(deploymentId=root["deploymentId"])["deploymentInfo"]
    assert root_now["relatedDeployments"]["autoUpdateOutdatedInstancesDeploymentIds"] == [
        update["deploymentId"]
    ]
    assert versions(fleet) == ["v1", "v1"]


def test_ignore_leaves_a_joining_host_alone(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1"], [], "CodeDeployDefault.OneAtATime")
    fleet.cd.update_deployment_group(
        applicationName="rb", currentDeploymentGroupName="g", outdatedInstancesStrategy="IGNORE"
    )
    assert fleet.wait(start(fleet, upload("v1.zip", version_bundle("v1"))))["status"] == "Succeeded"
    fleet.add_hosts(["web-2"], {"app": "rb"})
    # Outdated as soon as its agent has polled: then the sweeper's look (run here
    # rather than waited for) must leave it alone.
    wait_until(lambda: last_seen(fleet.server, "web-2"), "web-2's agent to poll")
    assert fleet.server.services.runner.sweeper.update_outdated() == []
    assert deployments_by(fleet, "CodeDeployAutoUpdate") == []


def test_update_outdated_only_and_restart(fleet: Fleet, upload: Uploader) -> None:
    make_group(fleet, ["web-1", "web-2"], [], "CodeDeployDefault.AllAtOnce")
    fleet.cd.update_deployment_group(
        applicationName="rb", currentDeploymentGroupName="g", outdatedInstancesStrategy="IGNORE"
    )
    v1 = upload("v1.zip", version_bundle("v1"))
    first = fleet.wait(start(fleet, v1))
    assert first["status"] == "Succeeded"
    fleet.add_hosts(["web-3"], {"app": "rb"})
    only = fleet.cd.create_deployment(
        applicationName="rb", deploymentGroupName="g", revision=v1, updateOutdatedInstancesOnly=True
    )["deploymentId"]
    assert fleet.wait(only)["status"] == "Succeeded"
    assert sorted(fleet.targets(only)) == ["web-3"]  # web-1 and web-2 already run v1

    restart = fleet.cd.create_deployment(
        applicationName="rb", deploymentGroupName="g", deploymentMode="RESTART"
    )["deploymentId"]
    info = fleet.wait(restart)
    assert info["status"] == "Succeeded"
    assert info["deploymentMode"] == "RESTART"
    assert info["revision"] == v1
    assert versions(fleet) == ["v1", "v1", "v1"]
