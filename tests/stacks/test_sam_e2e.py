"""The SAM example (examples/stacks/sam-function) end to end with the AWS CLI:
``aws cloudformation package`` puts the code in the built-in store, ``aws
cloudformation deploy`` creates the stack; a code change is shifted to the live alias
by a canary CodeDeploy deployment (10 % first, seen on the alias while it runs); a
change the PreTraffic hook rejects fails the deployment and rolls the stack back with
the traffic on the previous version.

Scaled minutes: one minute of the canary lasts MINUTE seconds. The CLI's stack waiter
polls every 30 s, so each deploy takes about that long.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.lambda_support import weight_on
from tests.stacks.conftest import events, outputs
from tests.stacks.test_api import invoke

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "stacks" / "sam-function"
AWS_CLI = Path(sys.executable).parent / "aws"
MINUTE = 0.5
BUCKET = "stack-code"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("sam") / "server", minute_seconds=MINUTE, hook_timeout=20.0
    )


def aws(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS_CLI), "cloudformation", *args, "--endpoint-url", server.url],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def package_and_deploy(
    server: LiveServer, source: Path, stack: str
) -> subprocess.CompletedProcess[str]:
    packaged = source / "packaged.yml"
    done = aws(
        server,
        *("package", "--template-file", str(source / "template.yml")),
        *("--s3-bucket", BUCKET, "--output-template-file", str(packaged)),
    )
    assert done.returncode == 0, done.stderr
    return aws(server, "deploy", "--template-file", str(packaged), "--stack-name", stack)


def set_app(source: Path, build: int, status: str = "ok") -> None:
    path = source / "app" / "app.py"
    text = path.read_text()
    text = text.replace("BUILD = 1", f"BUILD = {build}").replace(
        'STATUS = "ok"', f'STATUS = "{status}"'
    )
    for old in range(2, build):
        text = text.replace(f"BUILD = {old}", f"BUILD = {build}")
    path.write_text(text)


class WeightWatch:
    """Samples the share of ``version`` on the alias until stopped."""

    def __init__(self, lam: Any, function: str, version: str) -> None:
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(lam, function, version), daemon=True
        )
        self._thread.start()

    def _run(self, lam: Any, function: str, version: str) -> None:
        while not self._stop.wait(0.1):
            self.seen.add(weight_on(lam, function, "live", version))

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.seen


def test_sam_function_stack_ships_code_changes_by_canary(
    server: LiveServer, tmp_path: Path
) -> None:
    server.client("s3").create_bucket(Bucket=BUCKET)
    source = tmp_path / "sam-function"
    shutil.copytree(EXAMPLE, source)
    cfn = server.client("cloudformation")
    lam = server.client("lambda")
    codedeploy = server.client("codedeploy")

    created = package_and_deploy(server, source, "orders")
    assert created.returncode == 0, created.stderr
    stack = cfn.describe_stacks(StackName="orders")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    alias_arn, function = outputs(stack)["LiveAlias"], outputs(stack)["Function"]
    assert invoke(server, alias_arn) == {
        "status": "ok",
        "build": 1,
        "stage": "test",
        "version": "1",
    }

    # A code change: version 2 is published and the alias shifted 10 %, then 100 %.
    set_app(source, 2)
    watch = WeightWatch(lam, function, "2")
    updated = package_and_deploy(server, source, "orders")
    seen = watch.stop()
    assert updated.returncode == 0, updated.stderr
    assert cfn.describe_stacks(StackName="orders")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert 10 in seen and 100 in seen
    assert invoke(server, alias_arn)["build"] == 2
    notes = [
        reason
        for logical, _, reason in events(cfn, "orders")
        if logical == "OrdersApiAliaslive" and reason
    ]
    deployment_id = notes[-1].split()[2]
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert (info["status"], info["deploymentConfigName"]) == (
        "Succeeded",
        "CodeDeployDefault.LambdaCanary10Percent5Minutes",
    )
    # The replaced version is retained (SAM's default), so the old one still answers.
    assert lam.get_function_configuration(FunctionName=function, Qualifier="1")["Version"] == "1"

    # A change the PreTraffic hook rejects: the deployment fails before any traffic moves.
    set_app(source, 3, status="broken")
    refused = package_and_deploy(server, source, "orders")
    assert refused.returncode != 0
    assert "Failed to create/update the stack" in refused.stderr
    stack = cfn.describe_stacks(StackName="orders")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert weight_on(lam, function, "live", "2") == 100
    assert invoke(server, alias_arn)["build"] == 2
    # The function itself is back on build 2's code and configuration.
    assert invoke(server, function)["build"] == 2
    failures = [e for e in events(cfn, "orders") if e[1] == "UPDATE_FAILED"]
    assert failures and failures[-1][0] == "OrdersApiAliaslive"
    assert "failed" in failures[-1][2] and "CodeDeploy deployment" in failures[-1][2]
