"""The ECS blue/green example (examples/stacks/ecs-blue-green) end to end on the
embedded container service (real Podman containers behind HAProxy), with a load
generator on the production listener the whole time:

- ``aws cloudformation deploy`` creates the stack (the blue task set serves);
- a new Version (the task definition's environment) is a CodeDeploy blue/green
  deployment: the green task set gets 20 % of production traffic, then all of it, and
  the stack ends UPDATE_COMPLETE;
- a Version the AfterAllowTestTraffic hook rejects fails the deployment as soon as
  the hook reports, traffic stays on blue and the stack rolls back;
- a stop of the deployment at the canary's 20 % puts the traffic back on blue and rolls
  the stack back;
- ``shipyard stack deploy`` ships one more version and follows it live.

Every request through the production listener succeeds. Scaled minutes: the canary's
one minute lasts MINUTE seconds. The AWS CLI's stack waiter polls every 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port
from tests.e2e.http_load import Load, Request, start_load, summarize
from tests.ecs_support import WeightLog, embedded_ecs_server
from tests.stacks.conftest import events, settled
from tests.support import wait_until

pytestmark = pytest.mark.e2e

TEMPLATE = Path(__file__).parents[2] / "examples" / "stacks" / "ecs-blue-green" / "template.yml"
AWS_CLI = Path(sys.executable).parent / "aws"
MINUTE = 4.0
# Long enough never to be what ends a hook: a report must (the hook fails at once).
HOOK_TIMEOUT = 150.0
STACK = "web"
APPLICATION, GROUP = "CloudFormation-web", "CodeDeployBlueGreenHook"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from embedded_ecs_server(
        tmp_path_factory.mktemp("ecs-stack") / "server",
        minute_seconds=MINUTE,
        hook_timeout=HOOK_TIMEOUT,
    )


def aws_deploy(server: LiveServer, ports: dict[str, int], **parameters: str) -> Any:
    overrides = [f"{k}={v}" for k, v in {**ports, **parameters}.items()]
    return subprocess.run(
        [
            *(str(AWS_CLI), "cloudformation", "deploy", "--template-file", str(TEMPLATE)),
            *("--stack-name", STACK, "--endpoint-url", server.url),
            *("--parameter-overrides", *overrides),
        ],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def shipyard_deploy(server: LiveServer, ports: dict[str, int], **parameters: str) -> Any:
    pairs = [f"--parameter={k}={v}" for k, v in {**ports, **parameters}.items()]
    return subprocess.run(
        [
            *(sys.executable, "-m", "shipyard", "stack", "deploy", STACK),
            *("--template", str(TEMPLATE), *pairs),
        ],
        env=server.cli_env() | {"SHIPYARD_ENDPOINT": server.url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return str(answer.read().decode())


def parameters(ports: dict[str, int], version: str) -> list[dict[str, str]]:
    """The stack's parameters for CreateStack and UpdateStack."""
    values = {**{k: str(v) for k, v in ports.items()}, "Version": version}
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def production_load(tmp_path: Path, port: int) -> Load:
    """Steady requests to the production listener (150 a second on 8 connections)."""
    return start_load(
        f"http://127.0.0.1:{port}/", tmp_path / "load", connections=8, rate=150, seconds=600
    )


def versions(requests: list[Request], since: float) -> set[str]:
    return {r.body.split()[-1] for r in requests if r.started >= since}


class Service:
    """What the stack's resources are now, read through the AWS APIs."""

    def __init__(self, server: LiveServer) -> None:
        self.cfn = server.client("cloudformation")
        self.ecs = server.client("ecs")
        self.elbv2 = server.client("elbv2")
        self.codedeploy = server.client("codedeploy")

    def physical(self, logical_id: str) -> str:
        found = self.cfn.describe_stack_resources(StackName=STACK, LogicalResourceId=logical_id)
        return str(found["StackResources"][0]["PhysicalResourceId"])

    def status(self) -> str:
        return str(self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"])

    def task_sets(self) -> list[dict[str, Any]]:
        cluster, service = self.physical("Cluster"), self.physical("Service")
        found = self.ecs.describe_task_sets(cluster=cluster, service=service)["taskSets"]
        return [s for s in found if s["status"] != "DRAINING"]

    def deployments(self) -> list[dict[str, Any]]:
        ids = self.codedeploy.list_deployments(
            applicationName=APPLICATION, deploymentGroupName=GROUP
        )["deployments"]
        return [self.codedeploy.get_deployment(deploymentId=i)["deploymentInfo"] for i in ids]


def test_task_definition_changes_ship_blue_green(server: LiveServer, tmp_path: Path) -> None:
    ports = {"ProdPort": free_port(), "TestPort": free_port()}
    service = Service(server)
    created = aws_deploy(server, ports)
    assert created.returncode == 0, failures(service)
    assert service.status() == "CREATE_COMPLETE"
    assert page(ports["ProdPort"]).endswith("version 1\n")
    (blue,) = service.task_sets()
    blue_group = blue["loadBalancers"][0]["targetGroupArn"]
    green_group = service.physical("GreenTargetGroup")

    load = production_load(tmp_path, ports["ProdPort"])
    watch = WeightLog(service.elbv2, service.physical("ProductionListener"))
    try:
        # A new environment for the task definition: the canary.
        shipped = aws_deploy(server, ports, Version="2")
        assert shipped.returncode == 0, failures(service)
        assert service.status() == "UPDATE_COMPLETE"
        shipped_at = time.time()
        weights_seen = [w.get(green_group, 0) for _, w in watch.changes]
        assert 20 in weights_seen and 100 in weights_seen, watch.changes
        (deployment,) = service.deployments()
        assert deployment["status"] == "Succeeded"
        assert deployment["computePlatform"] == "ECS"
        (green,) = service.task_sets()
        assert green["id"] == service.physical("BlueTaskSet")
        assert green["externalId"] == deployment["deploymentId"]
        assert green["status"] == "PRIMARY"

        # A version the AfterAllowTestTraffic hook rejects: no production traffic moves.
        time.sleep(1.0)
        rejected_from = time.time()
        refused = aws_deploy(server, ports, Version="bad")
        assert refused.returncode != 0
        assert service.status() == "UPDATE_ROLLBACK_COMPLETE"
        failed = [d for d in service.deployments() if d["status"] == "Failed"]
        assert len(failed) == 1
        # Failed when the hook reported, not when its timeout ran out.
        took = (failed[0]["completeTime"] - failed[0]["createTime"]).total_seconds()
        assert took < HOOK_TIMEOUT / 2, took
        (left,) = service.task_sets()
        assert left["id"] == green["id"]
        reasons = [
            r for logical, status, r in events(service.cfn, STACK) if status == "UPDATE_FAILED"
        ]
        assert "AfterAllowTestTraffic failed" in reasons[-1], reasons

        # A stop of the green deployment at the canary's 20 %: traffic back on blue.
        stopped_from = time.time()
        service.cfn.update_stack(
            StackName=STACK, TemplateBody=TEMPLATE.read_text(), Parameters=parameters(ports, "3")
        )
        running = wait_until(
            lambda: next((d for d in service.deployments() if d["status"] == "InProgress"), None),
            "the version 3 deployment",
        )
        wait_until(
            lambda: watch.changes[-1][1].get(blue_group) == 20,
            lambda: f"the canary's 20 %: {watch.changes[-3:]}",
            60,
        )
        service.codedeploy.stop_deployment(deploymentId=running["deploymentId"])
        assert settled(service.cfn, STACK, 120)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        reasons = [
            r for logical, status, r in events(service.cfn, STACK) if status == "UPDATE_FAILED"
        ]
        assert f"CodeDeploy deployment {running['deploymentId']} stopped" in reasons[-1], reasons
        (left,) = service.task_sets()
        assert left["id"] == green["id"]
        ended = time.time()
        time.sleep(1.5)
    finally:
        changes = watch.stop()
        requests = load.stop()
    summary = summarize(requests)
    assert summary.failures == 0, summary
    assert summary.sent > 500, summary
    assert versions(requests, shipped_at + 1.0) - {"3"} == {"2"}
    assert versions(requests, ended + 1.0) == {"2"}
    # The rejected version never served production; its green never had any weight.
    assert all(
        w.get(blue_group, 0) == 0 for t, w in changes if rejected_from <= t < stopped_from
    ), changes
    assert changes[-1][1].get(blue_group, 0) == 0, changes
    assert page(ports["ProdPort"]).endswith("version 2\n")


def test_shipyard_stack_deploy_follows_the_green_deployment(server: LiveServer) -> None:
    ports = {"ProdPort": free_port(), "TestPort": free_port()}
    service = Service(server)
    if not _exists(service):
        assert aws_deploy(server, ports).returncode == 0
    else:
        ports = {
            "ProdPort": _port(service, "ProductionListener"),
            "TestPort": _port(service, "TestListener"),
        }
    done = shipyard_deploy(server, ports, Version="3")
    assert done.returncode == 0, done.stdout + done.stderr
    # The stack's events, then the deployment live: its hooks and its weights.
    assert "following d-" in done.stdout, done.stdout
    assert "AfterAllowTestTraffic  Succeeded" in done.stdout, done.stdout
    assert "traffic 80% blue / 20% green" in done.stdout, done.stdout
    assert "BlueTaskSet" in done.stdout and "UPDATE_COMPLETE" in done.stdout, done.stdout
    assert page(ports["ProdPort"]).endswith("version 3\n")
    assert service.status() == "UPDATE_COMPLETE"


def failures(service: Service) -> str:
    """The stack's failed events, to say why an operation failed."""
    found = [e for e in events(service.cfn, STACK) if "FAILED" in e[1] or "ROLLBACK" in e[1]]
    return "\n".join(" ".join(e) for e in found)


def _exists(service: Service) -> bool:
    stacks = service.cfn.list_stacks()["StackSummaries"]
    return any(s["StackName"] == STACK and s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


def _port(service: Service, listener: str) -> int:
    (found,) = service.elbv2.describe_listeners(ListenerArns=[service.physical(listener)])[
        "Listeners"
    ]
    return int(found["Port"])
