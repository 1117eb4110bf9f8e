"""The operator's path with the ``shipyard`` CLI alone, against a live fleet: setting up
(app, group), pushing and deploying, the fleet view, history, approval and re-attaching,
following into an automatic rollback, streamed hook output, hosts whose agent never
connected, and an emergency rollback that redeploys every host at once."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.agent.client import REPORTED_VERSION
from tests.e2e.conftest import SHARED_ROOT, Fleet, fleet_on_server, make_uploader
from tests.e2e.test_in_place import app_bundle
from tests.e2e.test_rollback import version_bundle
from tests.e2e.test_shipyard_cli import deployment_id_of, host_row, shipyard, source_tree

ROLLBACK_LINE = re.compile(
    r"^(d-\w+) started automatic rollback (d-\w+), returning the hosts to (\S+)", re.MULTILINE
)


def ok(fleet: Fleet, *args: str) -> str:
    result = shipyard(fleet, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def set_up(fleet: Fleet, hosts: list[str], *group_flags: str) -> None:
    fleet.add_hosts(hosts, {"role": "web"})
    ok(fleet, "app", "create", "shop")
    ok(fleet, "group", "create", "shop", "web", "--tag", "role=web", *group_flags)


def push(fleet: Fleet, tmp_path: Path, name: str, bundle: bytes) -> list[str]:
    """Push a bundle's tree with the CLI; return the deploy command it printed."""
    source = source_tree(tmp_path / name, bundle)
    out = ok(fleet, "push", "--application", "shop", "--source", str(source), "--bucket", "rel")
    return shlex.split(out.split("Deploy it with:", 1)[1].splitlines()[1])


def test_the_readme_path_with_the_shipyard_cli_alone(fleet: Fleet, tmp_path: Path) -> None:
    set_up(fleet, ["web-1", "web-2"], "--deployment-config", "CodeDeployDefault.AllAtOnce")
    shown = ok(fleet, "group", "show", "shop", "web")
    assert "role=web" in shown and "CodeDeployDefault.AllAtOnce" in shown
    assert json.loads(ok(fleet, "app", "list", "--output", "json")) == ["shop"]

    command = push(fleet, tmp_path, "v1", app_bundle("v1"))
    assert command[command.index("--group") + 1] == "web"  # the printed command runs as is
    deployed = ok(fleet, *command[1:])
    deployment_id = deployment_id_of(deployed)
    assert f"Deployment {deployment_id} Succeeded" in deployed

    fleet_view = json.loads(ok(fleet, "instance", "list", "--output", "json"))
    assert [(i["instanceName"], i["agentState"], i["agentVersion"]) for i in fleet_view] == [
        ("web-1", "connected", REPORTED_VERSION),
        ("web-2", "connected", REPORTED_VERSION),
    ]
    (running,) = fleet_view[0]["revisions"]
    assert (running["deploymentGroupName"], running["deploymentId"]) == ("web", deployment_id)
    table = ok(fleet, "instance", "list").splitlines()
    assert table[0].split()[:4] == ["NAME", "AGENT", "VERSION", "TAGS"]
    assert (
        table[1].startswith("web-1")
        and "connected (" in table[1]
        and f" {REPORTED_VERSION} " in table[1]
        and "shop/web: s3://rel/" in table[1]
    )

    history = ok(fleet, "history", "shop").splitlines()
    assert history[1].split()[:3] == [deployment_id, "web", "Succeeded"]
    assert (
        json.loads(ok(fleet, "history", "shop", "web", "--output", "json"))[0]["deploymentId"]
        == deployment_id
    )


def test_deploy_follows_into_the_automatic_rollback(fleet: Fleet, tmp_path: Path) -> None:
    set_up(fleet, ["web-1"], "--auto-rollback", "failure")
    assert "Auto-rollback  DEPLOYMENT_FAILURE" in ok(fleet, "group", "show", "shop", "web")
    good = push(fleet, tmp_path, "v1", version_bundle("v1"))
    ok(fleet, *good[1:])
    bad = push(fleet, tmp_path, "v2", version_bundle("v2", fail_at="ValidateService"))
    deployed = shipyard(fleet, *bad[1:])
    assert deployed.returncode == 1, deployed.stdout + deployed.stderr
    failed_id = deployment_id_of(deployed.stdout)
    found = ROLLBACK_LINE.search(deployed.stdout)
    assert found, deployed.stdout
    assert found.group(1) == failed_id
    assert found.group(3) == f"s3://rel/{good[good.index('--key') + 1]}"
    assert f"Deployment {found.group(2)} Succeeded" in deployed.stdout
    assert fleet.host("web-1").view(SHARED_ROOT / "www" / "version.txt").read_text() == "v1"
    status = shipyard(fleet, "status", failed_id)
    assert status.returncode == 1
    assert f"Rolled back by  {found.group(2)}" in status.stdout


def test_approval_status_watch_and_logs_follow(fleet: Fleet, tmp_path: Path) -> None:
    set_up(fleet, ["web-1"], "--require-approval")
    assert "Approval       required" in ok(fleet, "group", "show", "shop", "web")
    command = push(fleet, tmp_path, "v1", app_bundle("v1"))
    deployment_id = ok(fleet, *command[1:], "--no-wait").strip()
    status = ok(fleet, "status", deployment_id)
    assert re.search(r"^Waiting +Waiting for approval \(shipyard approve\)", status, re.M)
    ok(fleet, "approve", deployment_id)
    logs = ok(fleet, "logs", deployment_id, "--follow")
    assert re.search(
        r"^web-1 ValidateService\| \S+ \S+ \[stdout\]running ValidateService$", logs, re.M
    )
    watched = ok(fleet, "status", deployment_id, "--watch")
    assert f"{deployment_id}  Succeeded" in watched
    as_json = json.loads(ok(fleet, "status", deployment_id, "--output", "json"))
    assert as_json["deploymentInfo"]["status"] == "Succeeded"


def test_deploy_streams_hook_output_on_request(fleet: Fleet, tmp_path: Path) -> None:
    set_up(fleet, ["web-1"])
    command = push(fleet, tmp_path, "v1", app_bundle("v1"))
    deployed = ok(fleet, *command[1:], "--logs")
    streamed = [line.split(" ", 4) for line in deployed.splitlines() if "| " in line]
    start = [(s[0], s[1], s[4]) for s in streamed if s[1] == "ApplicationStart|"]
    assert start[-2:] == [
        ("web-1", "ApplicationStart|", "[stdout]running ApplicationStart"),
        ("web-1", "ApplicationStart|", "[stderr]a warning for ApplicationStart"),
    ]
    # streamed while following: before the final report
    assert deployed.index("running ApplicationStart") < deployed.index("Deployment d-")


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, agent_timeout=3.0)


def test_hosts_whose_agent_never_connected_are_named_at_once(quick_fleet: Fleet) -> None:
    fleet = quick_fleet
    upload = make_uploader(fleet.server)
    fleet.add_hosts(["web-1"], {"role": "web"})
    fleet.add_hosts(["web-2"], {"role": "web"}, start=False)
    ok(fleet, "app", "create", "shop")
    ok(fleet, "group", "create", "shop", "web", "--tag", "role=web")
    location = upload("v1.zip", app_bundle("v1"))["s3Location"]
    deployed = shipyard(
        fleet, "deploy", "--application", "shop", "--group", "web",
        "--bucket", location["bucket"], "--key", location["key"],
    )  # fmt: skip
    warning = deployed.stderr.splitlines()[0]
    assert warning.startswith("shipyard: warning: the agent on web-2 has never connected")
    assert host_row(deployed.stdout, "web-2")[1] == "Failed"  # after the agent timeout
    # the deployment says so too, from its creation: a status message and a waiting line
    deployment_id = deployment_id_of(deployed.stdout)
    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    expected = "The agent on web-2 had never connected to the server when the deployment"
    assert any(m.startswith(expected) for m in info["deploymentStatusMessages"]), info
    assert f"  waiting: {expected}" in deployed.stdout
    listed = ok(fleet, "instance", "list")
    assert re.search(r"^web-2\s+never-connected\s+-\s+role=web", listed, re.MULTILINE)


def test_an_emergency_rollback_redeploys_every_host_at_once(fleet: Fleet, tmp_path: Path) -> None:
    set_up(fleet, ["web-1", "web-2", "web-3"])  # OneAtATime by default
    ok(fleet, *push(fleet, tmp_path, "v1", version_bundle("v1"))[1:])
    ok(fleet, *push(fleet, tmp_path, "v2", version_bundle("v2"))[1:])
    out = ok(fleet, "rollback", "--application", "shop", "--group", "web", "--emergency")
    assert "every host at once (CodeDeployDefault.AllAtOnce)" in out
    rollback_id = re.search(r"Rollback deployment (d-\w+)", out)
    assert rollback_id, out
    info = fleet.cd.get_deployment(deploymentId=rollback_id.group(1))["deploymentInfo"]
    assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert info["status"] == "Succeeded"
    targets = fleet.targets(rollback_id.group(1))
    starts = [t["lifecycleEvents"][0]["startTime"] for t in targets.values()]
    ends = [t["lifecycleEvents"][-1]["endTime"] for t in targets.values()]
    assert max(starts) < min(ends), "every host started before any finished"
