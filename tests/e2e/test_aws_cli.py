"""A whole deployment driven by the real AWS CLI (``aws deploy ...``), and boto3's
``deployment_successful`` waiter, against a live server and real agents."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError

from tests.e2e.conftest import FINISHED, SHARED_ROOT, Fleet, Uploader, make_bundle
from tests.e2e.test_in_place import EVENTS, HOOKS
from tests.support import wait_until

AWS_CLI = Path(sys.executable).parent / "aws"
ROLE_ARN = "arn:aws:iam::000000000000:role/shipyard"
FAST_WAITER = {"Delay": 1, "MaxAttempts": 60}

RECORD = f"""#!/bin/sh
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID $BUNDLE_BUCKET $BUNDLE_KEY $BUNDLE_ETAG" \\
  >> {SHARED_ROOT}/cli-events.log
echo "cli hook $LIFECYCLE_EVENT"
"""


def aws(fleet: Fleet, *args: str) -> str:
    """Run the AWS CLI against the fleet's server; returns stdout (fails on non-zero)."""
    env = fleet.server.cli_env() | {"AWS_ENDPOINT_URL_S3": fleet.server.url}
    done = subprocess.run(
        [str(AWS_CLI), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"aws {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def aws_json(fleet: Fleet, *args: str) -> Any:
    return json.loads(aws(fleet, *args, "--output", "json") or "{}")


def write_source(root: Path) -> Path:
    """An application directory as ``aws deploy push`` bundles it."""
    hooks = "".join(f"  {event}:\n    - location: scripts/record.sh\n" for event in HOOKS)
    files = {
        "appspec.yml": (
            "version: 0.0\nos: linux\nfiles:\n"
            f"  - source: site\n    destination: {SHARED_ROOT}/cli-www\nhooks:\n{hooks}"
        ),
        "site/index.html": "<p>pushed by the aws cli</p>",
        "site/css/style.css": "body {}",
        "scripts/record.sh": RECORD,
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "scripts" / "record.sh").chmod(0o755)
    return root


def push_location(output: str) -> str:
    """The ``--s3-location`` value in push's "To deploy with this revision, run: ..." hint."""
    words = output.split()
    assert "create-deployment" in words, output
    return words[words.index("--s3-location") + 1]


def test_whole_deployment_through_the_aws_cli(fleet: Fleet, tmp_path: Path) -> None:
    hosts = ["cli-1", "cli-2"]
    fleet.add_hosts(hosts, {"tier": "cli"})

    aws(fleet, "s3", "mb", "s3://cli-bundles")
    created = aws_json(fleet, "deploy", "create-application", "--application-name", "cli-app")
    assert created["applicationId"]
    group = aws_json(
        fleet,
        *("deploy", "create-deployment-group", "--application-name", "cli-app"),
        *("--deployment-group-name", "cli-group", "--service-role-arn", ROLE_ARN),
        *("--deployment-config-name", "CodeDeployDefault.AllAtOnce"),
        *("--on-premises-instance-tag-filters", "Key=tier,Value=cli,Type=KEY_AND_VALUE"),
    )
    assert group["deploymentGroupId"]

    source = write_source(tmp_path / "source")
    pushed = aws(
        fleet,
        *("deploy", "push", "--application-name", "cli-app"),
        *("--s3-location", "s3://cli-bundles/cli-app/v1.zip", "--source", str(source)),
    )
    location = push_location(pushed)
    fields = dict(part.split("=", 1) for part in location.split(","))
    assert fields["bucket"] == "cli-bundles"
    assert fields["key"] == "cli-app/v1.zip"
    assert fields["bundleType"] == "zip"
    assert fields["eTag"]

    # push registered the revision: the CLI can read it back.
    revision = aws_json(
        fleet,
        *("deploy", "get-application-revision", "--application-name", "cli-app"),
        *("--s3-location", location),
    )
    assert revision["revision"]["s3Location"]["eTag"] == fields["eTag"]

    deployment_id = aws_json(
        fleet,
        *("deploy", "create-deployment", "--application-name", "cli-app"),
        *("--deployment-group-name", "cli-group", "--s3-location", location),
        *("--description", "from the aws cli"),
    )["deploymentId"]

    def finished() -> dict[str, Any] | None:
        found: dict[str, Any] = aws_json(
            fleet, "deploy", "get-deployment", "--deployment-id", deployment_id
        )["deploymentInfo"]
        return found if found["status"] in FINISHED else None

    # Every look starts the AWS CLI (a second of CPU): look seldom.
    info = wait_until(finished, "the deployment to finish", 60, every=0.2)
    assert info["status"] == "Succeeded", info
    assert info["description"] == "from the aws cli"
    assert info["deploymentOverview"]["Succeeded"] == 2
    assert info["revision"]["s3Location"]["key"] == "cli-app/v1.zip"

    target_ids = aws_json(
        fleet, "deploy", "list-deployment-targets", "--deployment-id", deployment_id
    )["targetIds"]
    assert sorted(target_ids) == hosts
    found = aws_json(
        fleet,
        *("deploy", "batch-get-deployment-targets", "--deployment-id", deployment_id),
        *("--target-ids", *target_ids),
    )["deploymentTargets"]
    assert len(found) == 2
    for entry in found:
        assert entry["deploymentTargetType"] == "InstanceTarget"
        target = entry["instanceTarget"]
        assert target["status"] == "Succeeded"
        events = target["lifecycleEvents"]
        assert [e["lifecycleEventName"] for e in events] == EVENTS
        assert {e["status"] for e in events} == {"Succeeded"}

    for name in hosts:
        host = fleet.host(name)
        page = host.view(SHARED_ROOT / "cli-www" / "index.html")
        assert page.read_text() == "<p>pushed by the aws cli</p>"
        assert host.view(SHARED_ROOT / "cli-www" / "css" / "style.css").read_text() == "body {}"
        lines = host.view(SHARED_ROOT / "cli-events.log").read_text().splitlines()
        # First deployment to these hosts: ApplicationStop has nothing to run.
        assert [line.split()[0] for line in lines] == HOOKS[1:]
        expected = [deployment_id, "cli-bundles", "cli-app/v1.zip", fields["eTag"]]
        assert all(line.split()[1:] == expected for line in lines)


def waiter_group(fleet: Fleet) -> None:
    fleet.add_hosts(["wait-1"], {"tier": "wait"})
    cd = fleet.cd
    cd.create_application(applicationName="waited")
    cd.create_deployment_group(
        applicationName="waited",
        deploymentGroupName="g",
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=[{"Key": "tier", "Value": "wait", "Type": "KEY_AND_VALUE"}],
    )


def hook_bundle(script: str) -> bytes:
    return make_bundle(
        {
            "appspec.yml": (
                "version: 0.0\nos: linux\nhooks:\n"
                "  AfterInstall:\n    - location: scripts/hook.sh\n      timeout: 30\n"
            ),
            "scripts/hook.sh": script,
        }
    )


def test_deployment_successful_waiter_returns_for_a_good_deployment(
    fleet: Fleet, upload: Uploader
) -> None:
    waiter_group(fleet)
    cd = fleet.cd
    revision = upload("waited/good.zip", hook_bundle("#!/bin/sh\necho fine\n"))
    deployment_id = cd.create_deployment(
        applicationName="waited", deploymentGroupName="g", revision=revision
    )["deploymentId"]
    cd.get_waiter("deployment_successful").wait(
        deploymentId=deployment_id, WaiterConfig=FAST_WAITER
    )
    assert cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] == "Succeeded"


def test_deployment_successful_waiter_raises_for_a_failing_deployment(
    fleet: Fleet, upload: Uploader
) -> None:
    waiter_group(fleet)
    cd = fleet.cd
    revision = upload("waited/bad.zip", hook_bundle("#!/bin/sh\necho nope >&2\nexit 1\n"))
    deployment_id = cd.create_deployment(
        applicationName="waited", deploymentGroupName="g", revision=revision
    )["deploymentId"]
    started = time.monotonic()
    with pytest.raises(WaiterError) as raised:
        cd.get_waiter("deployment_successful").wait(
            deploymentId=deployment_id, WaiterConfig=FAST_WAITER
        )
    # The waiter stops at the failure state, not after running out of attempts.
    assert "terminal failure state" in str(raised.value)
    assert time.monotonic() - started < 30
    last_response: Any = raised.value.last_response
    last = last_response["deploymentInfo"]
    assert last["status"] == "Failed"
    assert last["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
