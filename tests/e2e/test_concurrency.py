"""Two applications deployed at once to the same hosts: the agent runs the commands of
different deployment groups side by side, and both deployments succeed."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, make_bundle

HOSTS = ["both-1", "both-2", "both-3"]
APPS = ["alpha", "beta"]
TIMED_HOOKS = ["BeforeInstall", "AfterInstall", "ApplicationStart"]

# Each hook takes half a second and notes when it ran: "<event> <start> <end>".
TIMED = """#!/bin/sh
start=$(date +%s.%N)
sleep 0.5
echo "$LIFECYCLE_EVENT $start $(date +%s.%N)" >> {root}/timing-$APPLICATION_NAME.log
"""


def app_bundle(app: str) -> bytes:
    hooks = "".join(
        f"  {event}:\n    - location: scripts/timed.sh\n      timeout: 30\n"
        for event in TIMED_HOOKS
    )
    appspec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/{app}\nhooks:\n{hooks}"
    )
    return make_bundle(
        {
            "appspec.yml": appspec,
            "site/index.html": f"this is {app}",
            "scripts/timed.sh": TIMED.format(root=SHARED_ROOT),
        }
    )


def create_app(fleet: Fleet, app: str) -> None:
    cd = fleet.cd
    cd.create_application(applicationName=app, computePlatform="Server")
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName=f"{app}-group",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": "pool", "Value": "shared", "Type": "KEY_AND_VALUE"}],
    )


def intervals(text: str) -> list[tuple[str, float, float]]:
    found = []
    for line in text.splitlines():
        event, start, end = line.split()
        found.append((event, float(start), float(end)))
    return found


def test_two_applications_deploy_to_the_same_hosts_at_once(fleet: Fleet, upload: Uploader) -> None:
    fleet.add_hosts(HOSTS, {"pool": "shared"})
    revisions: dict[str, dict[str, Any]] = {}
    for app in APPS:
        create_app(fleet, app)
        revisions[app] = upload(f"{app}/v1.zip", app_bundle(app))

    cd = fleet.cd
    deployment_ids = {
        app: cd.create_deployment(
            applicationName=app, deploymentGroupName=f"{app}-group", revision=revisions[app]
        )["deploymentId"]
        for app in APPS
    }
    results = {app: fleet.wait(deployment_id) for app, deployment_id in deployment_ids.items()}

    for app, info in results.items():
        assert info["status"] == "Succeeded", (app, info)
        assert info["deploymentOverview"]["Succeeded"] == len(HOSTS)
        targets = fleet.targets(info["deploymentId"])
        assert sorted(targets) == HOSTS
        assert {t["status"] for t in targets.values()} == {"Succeeded"}

    for host in fleet.hosts:
        for app in APPS:
            assert host.view(SHARED_ROOT / app / "index.html").read_text() == f"this is {app}"
        alpha = intervals(host.view(SHARED_ROOT / "timing-alpha.log").read_text())
        beta = intervals(host.view(SHARED_ROOT / "timing-beta.log").read_text())
        assert [event for event, _, _ in alpha] == TIMED_HOOKS
        assert [event for event, _, _ in beta] == TIMED_HOOKS
        # Some hook of alpha ran while some hook of beta was running on the same host:
        # the host did not serialise the two deployment groups.
        overlapping = [
            (a_event, b_event)
            for a_event, a_start, a_end in alpha
            for b_event, b_start, b_end in beta
            if a_start < b_end and b_start < a_end
        ]
        assert overlapping, f"{host.name}: no overlap between {alpha} and {beta}"
