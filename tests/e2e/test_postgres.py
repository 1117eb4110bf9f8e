"""Whole deployments with the server on PostgreSQL: real agents, real scripts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, fleet_on_server, make_uploader
from tests.e2e.test_failures import bundle_with_hook, event_of
from tests.e2e.test_in_place import EVENTS, HOOKS, app_bundle, deploy, setup_group
from tests.support import call_extension


@pytest.fixture
def pg_fleet(tmp_path: Path, pg_url: str) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, database=pg_url)


@pytest.fixture
def pg_upload(pg_fleet: Fleet) -> Uploader:
    return make_uploader(pg_fleet.server)


def test_server_on_postgres_runs_a_whole_deployment(pg_fleet: Fleet, pg_upload: Uploader) -> None:
    assert pg_fleet.server.services.db.engine.dialect.name == "postgresql"
    hosts = ["pg-1", "pg-2"]
    setup_group(pg_fleet, hosts)
    revision = pg_upload("shop/v1.zip", app_bundle("v1"))
    info = deploy(pg_fleet, revision, description="on postgres")

    assert info["status"] == "Succeeded", info
    assert info["description"] == "on postgres"
    assert info["deploymentOverview"] == {
        "Pending": 0,
        "InProgress": 0,
        "Succeeded": 2,
        "Failed": 0,
        "Skipped": 0,
        "Ready": 0,
    }
    group = pg_fleet.cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    group_info = group["deploymentGroupInfo"]
    assert group_info["lastSuccessfulDeployment"]["deploymentId"] == info["deploymentId"]
    assert group_info["targetRevision"] == revision

    targets = pg_fleet.targets(info["deploymentId"])
    assert sorted(targets) == hosts
    for name in hosts:
        target = targets[name]
        assert target["status"] == "Succeeded"
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == EVENTS
        assert all(e["status"] == "Succeeded" for e in target["lifecycleEvents"])
        host = pg_fleet.host(name)
        assert host.view(SHARED_ROOT / "www" / "index.html").read_text() == "<h1>v1</h1>"
        assert host.view(SHARED_ROOT / "etc" / "app.conf").read_text() == "version=v1"
        lines = host.view(SHARED_ROOT / "events.log").read_text().splitlines()
        assert [line.split()[0] for line in lines] == HOOKS[1:]
    # One at a time: the second host starts after the first one finished.
    first, second = (targets[name]["lifecycleEvents"] for name in hosts)
    assert first[-1]["endTime"] <= second[0]["startTime"]

    # The streamed script output was stored in PostgreSQL, every chunk of it.
    logs = call_extension(
        pg_fleet.server,
        "ShipyardGetLifecycleEventLog",
        {"deploymentId": info["deploymentId"], "targetId": "pg-1"},
    )
    by_event = {e["lifecycleEventName"]: e["log"] for e in logs["events"]}
    assert "[stdout]running AfterInstall" in by_event["AfterInstall"]
    assert "[stderr]a warning for ApplicationStart" in by_event["ApplicationStart"]


def test_failed_deployment_on_postgres_reports_its_error(
    pg_fleet: Fleet, pg_upload: Uploader
) -> None:
    setup_group(pg_fleet, ["pg-1", "pg-2"])
    script = "#!/bin/sh\necho giving up >&2\nexit 7\n"
    info = deploy(pg_fleet, pg_upload("bad.zip", bundle_with_hook("BeforeInstall", script)))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert info["deploymentOverview"]["Failed"] == 1
    assert info["deploymentOverview"]["Skipped"] == 1
    targets = pg_fleet.targets(info["deploymentId"])
    failed = targets["pg-1"]  # one at a time, in name order: the first host fails
    assert failed["status"] == "Failed"
    assert targets["pg-2"]["status"] == "Skipped"
    event = event_of(failed, "BeforeInstall")
    assert event["diagnostics"]["errorCode"] == "ScriptFailed"
    assert event["diagnostics"]["scriptName"] == "scripts/hook.sh"
    assert "exit code 7" in event["diagnostics"]["message"]
    assert "[stderr]giving up" in event["diagnostics"]["logTail"]
    group = pg_fleet.cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    assert group["deploymentGroupInfo"]["lastAttemptedDeployment"]["status"] == "Failed"
    assert "lastSuccessfulDeployment" not in group["deploymentGroupInfo"]
