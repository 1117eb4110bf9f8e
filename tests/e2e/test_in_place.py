"""Whole in-place deployments: a real server, real agent processes, real scripts."""

from __future__ import annotations

import itertools
from typing import Any

from tests.conftest import on_both_databases
from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, commands_run, make_bundle
from tests.support import call_extension

EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]
HOOKS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]

RECORD = """#!/bin/sh
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME \
  $DEPLOYMENT_GROUP_ID $BUNDLE_BUCKET $BUNDLE_KEY $BUNDLE_ETAG" >> {root}/events.log
echo "running $LIFECYCLE_EVENT"
echo "a warning for $LIFECYCLE_EVENT" >&2
"""


def app_bundle(version: str, extra_hooks: str = "") -> bytes:
    hooks = "".join(
        f"  {event}:\n    - location: scripts/record.sh\n      timeout: 30\n" for event in HOOKS
    )
    appspec = f"""version: 0.0
os: linux
files:
  - source: site
    destination: {SHARED_ROOT}/www
  - source: config/app.conf
    destination: {SHARED_ROOT}/etc
permissions:
  - object: {SHARED_ROOT}/www
    pattern: "*.html"
    mode: 640
    type: [file]
hooks:
{hooks}{extra_hooks}"""
    return make_bundle(
        {
            "appspec.yml": appspec,
            "site/index.html": f"<h1>{version}</h1>",
            "site/assets/app.js": "console.log(1)",
            "config/app.conf": f"version={version}",
            "scripts/record.sh": RECORD.format(root=SHARED_ROOT),
        }
    )


def setup_group(
    fleet: Fleet, hosts: list[str], config: str = "CodeDeployDefault.OneAtATime"
) -> None:
    fleet.add_hosts(hosts, {"role": "web"})
    cd = fleet.cd
    cd.create_application(applicationName="shop", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName=config,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )


def deploy(fleet: Fleet, revision: dict[str, Any], **extra: Any) -> dict[str, Any]:
    deployment_id = fleet.cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision, **extra
    )["deploymentId"]
    return fleet.wait(deployment_id)


@on_both_databases
def test_deploys_to_three_hosts_one_at_a_time(
    fleet: Fleet, upload: Uploader, database: str
) -> None:
    dialect = fleet.server.services.db.engine.dialect.name
    assert dialect == ("postgresql" if database else "sqlite")
    hosts = ["web-1", "web-2", "web-3"]
    setup_group(fleet, hosts)
    revision = upload("shop/v1.zip", app_bundle("v1"))
    info = deploy(fleet, revision, description="first release")

    assert info["status"] == "Succeeded", info
    assert info["deploymentOverview"] == {
        "Pending": 0,
        "InProgress": 0,
        "Succeeded": 3,
        "Failed": 0,
        "Skipped": 0,
        "Ready": 0,
    }
    assert info["creator"] == "user"
    assert info["description"] == "first release"
    group = fleet.cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    group_info = group["deploymentGroupInfo"]
    assert group_info["lastSuccessfulDeployment"]["deploymentId"] == info["deploymentId"]
    assert group_info["targetRevision"] == revision

    targets = fleet.targets(info["deploymentId"])
    assert sorted(targets) == hosts
    starts = []
    for name in hosts:
        target = targets[name]
        assert target["status"] == "Succeeded"
        assert [e["lifecycleEventName"] for e in target["lifecycleEvents"]] == EVENTS
        assert all(e["status"] == "Succeeded" for e in target["lifecycleEvents"])
        starts.append(target["lifecycleEvents"][0]["startTime"])
        ends = [e["endTime"] for e in target["lifecycleEvents"]]
        assert ends == sorted(ends)

        host = fleet.host(name)
        page = host.view(SHARED_ROOT / "www" / "index.html")
        assert page.read_text() == "<h1>v1</h1>"
        assert page.stat().st_mode & 0o777 == 0o640
        assert host.view(SHARED_ROOT / "www" / "assets" / "app.js").exists()
        assert host.view(SHARED_ROOT / "etc" / "app.conf").read_text() == "version=v1"

        # First deployment: ApplicationStop has no previous revision, so it is a no-op.
        lines = host.view(SHARED_ROOT / "events.log").read_text().splitlines()
        assert [line.split()[0] for line in lines] == HOOKS[1:]
        fields = lines[0].split()
        group_id = group_info["deploymentGroupId"]
        etag = revision["s3Location"]["eTag"]
        assert fields[1:] == [
            info["deploymentId"],
            "shop",
            "web",
            group_id,
            "bundles",
            "shop/v1.zip",
            etag,
        ]

        log_path = (
            host.home / "deployment-root" / group_id / info["deploymentId"] / "logs" / "scripts.log"
        )
        assert "[stdout]running AfterInstall" in log_path.read_text()
    # One at a time: each host starts after the previous one finished.
    assert starts == sorted(starts)
    for earlier, later in itertools.pairwise(hosts):
        assert (
            targets[earlier]["lifecycleEvents"][-1]["endTime"]
            <= targets[later]["lifecycleEvents"][0]["startTime"]
        )

    # The whole script output is kept (in the server's database, every chunk of it) and
    # readable, stdout and stderr.
    logs = call_extension(
        fleet.server,
        "ShipyardGetLifecycleEventLog",
        {"deploymentId": info["deploymentId"], "targetId": "web-2"},
    )
    by_event = {e["lifecycleEventName"]: e["log"] for e in logs["events"]}
    assert "[stdout]running BeforeInstall" in by_event["BeforeInstall"]
    assert "[stdout]running AfterInstall" in by_event["AfterInstall"]
    assert "[stderr]a warning for ApplicationStart" in by_event["ApplicationStart"]
    assert "[stderr]a warning for ValidateService" in by_event["ValidateService"]


def test_second_deployment_runs_previous_stop_script_and_removes_old_files(
    fleet: Fleet, upload: Uploader
) -> None:
    setup_group(fleet, ["web-1", "web-2"], "CodeDeployDefault.AllAtOnce")
    first = deploy(fleet, upload("shop/v1.zip", app_bundle("v1")))
    assert first["status"] == "Succeeded"
    stop_hook = "  ApplicationStop:\n    - location: scripts/stop-v2.sh\n"
    bundle = make_bundle(
        {
            "appspec.yml": (
                "version: 0.0\nos: linux\nfiles:\n"
                f"  - source: site\n    destination: {SHARED_ROOT}/www\nhooks:\n{stop_hook}"
            ),
            "site/index.html": "<h1>v2</h1>",
            "scripts/stop-v2.sh": f"#!/bin/sh\necho v2-stop >> {SHARED_ROOT}/events.log\n",
        }
    )
    second = deploy(fleet, upload("shop/v2.zip", bundle))
    assert second["status"] == "Succeeded", second
    assert second["previousRevision"] == first["revision"]
    for host in fleet.hosts:
        lines = host.view(SHARED_ROOT / "events.log").read_text().splitlines()
        # v1's ApplicationStop (from the last successful revision) ran, not v2's.
        assert lines[-1].split()[0] == "ApplicationStop"
        assert lines[-1].split()[1] == second["deploymentId"]
        assert host.view(SHARED_ROOT / "www" / "index.html").read_text() == "<h1>v2</h1>"
        # v1's files that v2 does not ship are gone (the cleanup file did its work).
        assert not host.view(SHARED_ROOT / "www" / "assets" / "app.js").exists()
        assert not host.view(SHARED_ROOT / "etc" / "app.conf").exists()


def test_events_without_scripts_are_completed_by_the_server(fleet: Fleet, upload: Uploader) -> None:
    """The agent names the hooks it has nothing to run for with each result
    (``ShipyardNoopEvents``); the server completes those for it, so only the events
    with work reach the agent, and the history still shows all seven."""
    setup_group(fleet, ["web-1", "web-2"], "CodeDeployDefault.AllAtOnce")
    only_after_install = "  AfterInstall:\n    - location: scripts/record.sh\n"
    bundle = make_bundle(
        {
            "appspec.yml": f"version: 0.0\nos: linux\nhooks:\n{only_after_install}",
            "scripts/record.sh": RECORD.format(root=SHARED_ROOT),
        }
    )
    info = deploy(fleet, upload("shop/hooks.zip", bundle))
    assert info["status"] == "Succeeded", info
    for name, target in fleet.targets(info["deploymentId"]).items():
        events = target["lifecycleEvents"]
        assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
            (event, "Succeeded") for event in EVENTS
        ], name
        lines = fleet.host(name).view(SHARED_ROOT / "events.log").read_text().splitlines()
        assert [line.split()[0] for line in lines] == ["AfterInstall"]
    # ApplicationStop comes with the poll (a first deployment: nothing to stop, but no
    # result came before it to say so); BeforeInstall, ApplicationStart and
    # ValidateService never reached an agent.
    ran = ["ApplicationStop", "DownloadBundle", "Install", "AfterInstall"]
    assert commands_run(fleet, info["deploymentId"]) == {"web-1": ran, "web-2": ran}
