"""Blue/green onto a replacement fleet the server provisions: Podman containers
running the Shipyard agent (COPY_AUTO_SCALING_GROUP)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.provision.podman import PodmanProvisioner
from tests.conftest import service_missing
from tests.e2e.conftest import (
    Fleet,
    blue_green_members,
    fleet_on_server,
    make_bundle,
    make_uploader,
)

ROLE = "arn:aws:iam::000000000000:role/shipyard"
BLUE = ["blue-1", "blue-2"]
SITE = "/srv/shipyard-green"


@pytest.fixture
def green_fleet(tmp_path: Path) -> Iterator[Fleet]:
    if shutil.which("podman") is None:
        service_missing("podman")
    seed = "web=" + ",".join([*BLUE, "web-1", "web-2"])
    fleets = fleet_on_server(
        tmp_path, traffic_router="memory", traffic_address=seed, provisioner="podman"
    )
    for fleet in fleets:
        try:
            yield fleet
        finally:
            provisioner = fleet.server.services.runner.provisioner
            if isinstance(provisioner, PodmanProvisioner):
                provisioner.teardown()


def test_provisioned_replacement_fleet_takes_over_and_blue_is_retired(
    green_fleet: Fleet,
) -> None:
    fleet = green_fleet
    fleet.add_hosts(BLUE, {"role": "web"})
    router = fleet.server.services.runner.router
    assert router is not None
    for name in ("web-1", "web-2"):
        router.block("web", name, drain_timeout=0.0)
    cd = fleet.cd
    cd.create_application(applicationName="shop")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        loadBalancerInfo={"targetGroupInfoList": [{"name": "web"}]},
        **blue_green_members(
            ready_wait_minutes=None,
            termination_wait_minutes=0,
            provisioning="COPY_AUTO_SCALING_GROUP",
        ),
    )
    bundle = make_bundle(
        {
            "appspec.yml": (
                f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {SITE}\n"
            ),
            "site/index.html": "green fleet",
        }
    )
    revision = make_uploader(fleet.server)("app.zip", bundle)
    deployment_id = cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )["deploymentId"]
    info = fleet.wait(deployment_id, timeout=90)
    assert info["status"] == "Succeeded", fleet.targets(deployment_id)
    labels = {name: t["instanceLabel"] for name, t in fleet.targets(deployment_id).items()}
    assert labels == {"blue-1": "Blue", "blue-2": "Blue", "web-1": "Green", "web-2": "Green"}
    states = {s.server: s.admin for s in router.describe("web")}
    assert states == {"blue-1": "maint", "blue-2": "maint", "web-1": "ready", "web-2": "ready"}
    provisioner = fleet.server.services.runner.provisioner
    assert isinstance(provisioner, PodmanProvisioner)
    for name in ("web-1", "web-2"):
        assert provisioner.read_file(name, f"{SITE}/index.html") == "green fleet"
    # The new hosts carry the group's tags: the next deployment's original fleet.
    members = cd.list_on_premises_instances(
        registrationStatus="Registered",
        tagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )["instanceNames"]
    assert sorted(members) == ["web-1", "web-2"]
