"""ECS deployments end to end on the embedded container service: a CODE_DEPLOY service
of three busybox httpd tasks (real Podman containers) behind an HAProxy load balancer
(the embedded ELBv2, retries off), deployed through boto3 while a load generator sends
requests to the production listener the whole time. Every scenario ends with zero
failed requests and the service on the right task definition; the share of answers
from the new version follows the schedule. Hooks are real functions on the function
host; the alarm is Shipyard's HTTP alarm.

Scaled minutes: one routing-config minute lasts MINUTE seconds."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.containers.ecs.images import HTTPD_IMAGE
from tests.conftest import LiveServer
from tests.e2e.http_load import Load, Request, between, start_load, summarize
from tests.e2e.test_lambda_deployments import Stub
from tests.ecs_support import (
    Stack,
    WeightLog,
    appspec,
    embedded_ecs_server,
    embedded_stack,
    group_members,
    killable_ecs_server,
    listener_port,
    revision,
    weights,
)
from tests.functions.conftest import python_function
from tests.server.crud_support import aws_cli
from tests.support import call_extension, wait_until

pytestmark = pytest.mark.e2e


APP = "shop"
MINUTE = 1.0
HOOK_SOURCE = """\
import os
import boto3

def handler(event, context):
    boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=os.environ["HOOK_STATUS"],
    )
"""
CONFIGS = {
    "canary-20": {  # 20 % for 4 s, then 100 %
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 4},
    },
    "linear-25": {  # 25, 50, 75, 100 %, 2 s apart
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 2},
    },
    "slow-canary": {  # 20 % for 60 s: long enough to be stopped in
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 60},
    },
}
ROLLBACK_ALL = {
    "enabled": True,
    "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from embedded_ecs_server(
        tmp_path_factory.mktemp("ecs-e2e") / "server",
        minute_seconds=MINUTE,
        hook_timeout=120.0,  # also how long Install may wait for steady tasks
    )


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    lam = server.client("lambda")
    for status in ("Succeeded", "Failed"):
        python_function(
            lam,
            f"CodeDeployHook_{status}",
            HOOK_SOURCE,
            Environment={"Variables": {"HOOK_STATUS": status}},
        )
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="ECS")
    for name, routing in CONFIGS.items():
        client.create_deployment_config(
            deploymentConfigName=name, computePlatform="ECS", trafficRoutingConfig=routing
        )
    return client


class Scene:
    """One service behind its load balancer, its deployment group, and the production
    listener's weights as they changed while under load."""

    def __init__(self, server: LiveServer, cd: Any, name: str, config: str, **group: Any) -> None:
        self.cd = cd
        self.ecs = server.client("ecs")
        self.elbv2 = server.client("elbv2")
        self.stack: Stack = embedded_stack(self.ecs, self.elbv2, name, HTTPD_IMAGE)
        self.group = name
        cd.create_deployment_group(
            applicationName=APP,
            deploymentGroupName=name,
            deploymentConfigName=config,
            **group_members(self.stack, **group),
        )
        wait_until(lambda: self._healthy() == 3, "the service's three tasks healthy", 90)
        self.url = f"http://127.0.0.1:{listener_port(self.elbv2, self.stack.prod_listener)}/"
        self.changes: list[tuple[float, dict[str, int]]] = []

    def _healthy(self) -> int:
        found = self.elbv2.describe_target_health(TargetGroupArn=self.stack.target_group_arns[0])
        return sum(
            t["TargetHealth"]["State"] == "healthy" for t in found["TargetHealthDescriptions"]
        )

    def deploy(self, version: int, hooks: str = "") -> str:
        content = appspec(self.stack.task_definitions[version - 1], hooks=hooks)
        answer = self.cd.create_deployment(
            applicationName=APP, deploymentGroupName=self.group, revision=revision(content)
        )
        return str(answer["deploymentId"])

    def status(self, deployment_id: str) -> str:
        return str(self.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])

    def reaches(self, deployment_id: str, status: str, timeout: float = 240.0) -> None:
        def story() -> str:
            target = self.cd.get_deployment_target(
                deploymentId=deployment_id, targetId=f"{self.stack.cluster}:web"
            )["deploymentTarget"]["ecsTarget"]
            events = [
                (e["lifecycleEventName"], e["status"], (e.get("diagnostics") or {}).get("message"))
                for e in target["lifecycleEvents"]
            ]
            return f"{deployment_id} {status}: {self.status(deployment_id)} {events}"

        wait_until(lambda: self.status(deployment_id) == status, story, timeout)

    def service_version(self) -> int:
        (service,) = self.ecs.describe_services(cluster=self.stack.cluster, services=["web"])[
            "services"
        ]
        return self.stack.task_definitions.index(service["taskDefinition"]) + 1

    def task_sets(self) -> list[dict[str, Any]]:
        found = self.ecs.describe_task_sets(cluster=self.stack.cluster, service="web")
        return [s for s in found["taskSets"] if s["status"] != "DRAINING"]

    def replacement_group(self, deployment_id: str) -> str:
        def found() -> str | None:
            for task_set in self.task_sets():
                if task_set.get("externalId") == deployment_id:
                    return str(task_set["loadBalancers"][0]["targetGroupArn"])
            return None

        return wait_until(found, "the replacement task set")

    def weight_on(self, group: str) -> int:
        return weights(self.elbv2, self.stack.prod_listener).get(group, 0)

    @contextlib.contextmanager
    def under_load(self, tmp: Path) -> Iterator[Load]:
        load = start_load(
            self.url, tmp / f"{self.group}.load", connections=8, rate=150, seconds=300
        )
        watch = WeightLog(self.elbv2, self.stack.prod_listener)
        self.changes = watch.changes
        try:
            yield load
        finally:
            watch.stop()
            load.stop()

    def share(self, requests: list[Request], group: str, weight: int, version: int) -> float:
        """The share of answers from ``version`` while ``group`` had ``weight`` of the
        production listener (the first such period, its edges trimmed)."""
        periods = [i for i, (_, w) in enumerate(self.changes) if w.get(group, 0) == weight]
        assert periods, f"{weight} % on {group} was never seen: {self.changes}"
        first = periods[0]
        start = self.changes[first][0]
        end = self.changes[first + 1][0] if first + 1 < len(self.changes) else time.time()
        window = between(requests, start + 0.3, end - 0.3)
        assert len(window) >= 40, (weight, len(window), self.changes)
        return sum(f"version {version}" in r.body for r in window) / len(window)


def _no_failures(requests: list[Request]) -> None:
    summary = summarize(requests)
    assert summary.failures == 0, summary
    assert summary.sent > 200, summary


def _versions(requests: list[Request], since: float) -> set[str]:
    return {r.body.split()[-1] for r in requests if r.started >= since}


def _hooks(failing: str | None = None) -> str:
    lines = ["Hooks:"]
    for event in (
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ):
        status = "Failed" if event == failing else "Succeeded"
        lines.append(f"  - {event}: CodeDeployHook_{status}")
    return "\n".join(lines) + "\n"


def test_canary_linear_and_all_at_once_under_load(
    server: LiveServer, cd: Any, tmp_path: Path
) -> None:
    scene = Scene(server, cd, "shapes", "canary-20")
    with scene.under_load(tmp_path) as load:
        canary = scene.deploy(2, hooks=_hooks())
        green = scene.replacement_group(canary)
        scene.reaches(canary, "Succeeded")
        assert scene.service_version() == 2
        cd.update_deployment_group(
            applicationName=APP,
            currentDeploymentGroupName="shapes",
            deploymentConfigName="linear-25",
        )
        linear = scene.deploy(3)
        blue = scene.replacement_group(linear)
        scene.reaches(linear, "Succeeded")
        assert scene.service_version() == 3
        cd.update_deployment_group(
            applicationName=APP,
            currentDeploymentGroupName="shapes",
            deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        )
        at_once = scene.deploy(1)
        scene.reaches(at_once, "Succeeded")
        ended = time.time()
        time.sleep(1.0)
    requests = load.requests
    _no_failures(requests)
    assert scene.service_version() == 1
    assert _versions(requests, ended + 0.5) == {"1"}
    # The split follows the schedule: 20 % of the canary's answers came from version 2,
    # then 25/50/75 % from version 3.
    assert 0.08 <= scene.share(requests, green, 20, 2) <= 0.35
    for weight in (25, 50, 75):
        share = scene.share(requests, blue, weight, 3)
        assert weight / 100 - 0.15 <= share <= weight / 100 + 0.15, (weight, share)
    (left,) = scene.task_sets()
    assert left["externalId"] == at_once


def test_a_failing_test_traffic_hook_never_reaches_production(
    server: LiveServer, cd: Any, tmp_path: Path
) -> None:
    scene = Scene(server, cd, "hooked", "CodeDeployDefault.ECSAllAtOnce")
    with scene.under_load(tmp_path) as load:
        started = time.time()
        deployment_id = scene.deploy(2, hooks=_hooks(failing="AfterAllowTestTraffic"))
        scene.reaches(deployment_id, "Failed")
        wait_until(lambda: len(scene.task_sets()) == 1, "the replacement deleted", 60)
    requests = load.requests
    _no_failures(requests)
    assert _versions(requests, started) == {"1"}
    blue = scene.stack.target_group_arns[0]
    assert all(set(w) <= {blue} or w.get(blue) == 100 for _, w in scene.changes), scene.changes
    assert scene.service_version() == 1


def test_an_alarm_mid_shift_moves_traffic_back(server: LiveServer, cd: Any, tmp_path: Path) -> None:
    stub = Stub()
    try:
        call_extension(
            server, "ShipyardPutAlarm", {"alarmName": "web-health", "http": {"url": stub.url}}
        )
        scene = Scene(
            server,
            cd,
            "alarmed",
            "slow-canary",
            alarmConfiguration={"enabled": True, "alarms": [{"name": "web-health"}]},
            autoRollbackConfiguration=ROLLBACK_ALL,
        )
        with scene.under_load(tmp_path) as load:
            deployment_id = scene.deploy(2)
            green = scene.replacement_group(deployment_id)
            wait_until(lambda: scene.weight_on(green) == 20, "the canary's 20 %", 150)
            time.sleep(2.0)
            stub.status = 500
            scene.reaches(deployment_id, "Stopped")
            wait_until(lambda: len(scene.task_sets()) == 1, "the replacement deleted", 60)
            back = time.time()
            time.sleep(1.5)
        requests = load.requests
        _no_failures(requests)
        assert 0.08 <= scene.share(requests, green, 20, 2) <= 0.35
        assert _versions(requests, back) == {"1"}
        assert scene.service_version() == 1
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    finally:
        stub.close()


def test_a_stop_mid_shift_and_a_manual_rollback_after_success(
    server: LiveServer, cd: Any, tmp_path: Path
) -> None:
    scene = Scene(server, cd, "stopped", "slow-canary")
    with scene.under_load(tmp_path) as load:
        deployment_id = scene.deploy(2)
        green = scene.replacement_group(deployment_id)
        wait_until(lambda: scene.weight_on(green) == 20, "the canary's 20 %", 150)
        cd.stop_deployment(deploymentId=deployment_id)
        scene.reaches(deployment_id, "Stopped")
        wait_until(lambda: len(scene.task_sets()) == 1, "the replacement deleted", 60)
        stopped = time.time()
        time.sleep(3.0)
        assert scene.service_version() == 1

        cd.update_deployment_group(
            applicationName=APP,
            currentDeploymentGroupName="stopped",
            deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        )
        scene.reaches(scene.deploy(2), "Succeeded")
        content = appspec(scene.stack.task_definitions[2])
        by_cli = aws_cli(
            server,
            "create-deployment",
            "--application-name",
            APP,
            "--deployment-group-name",
            "stopped",
            "--revision",
            json.dumps(revision(content)),
        )["deploymentId"]
        scene.reaches(by_cli, "Succeeded")
        assert scene.service_version() == 3
        answer = call_extension(
            server, "ShipyardRollback", {"applicationName": APP, "deploymentGroupName": "stopped"}
        )
        scene.reaches(answer["rollbackDeploymentId"], "Succeeded")
        rolled = time.time()
        time.sleep(1.5)
    requests = load.requests
    _no_failures(requests)
    # The load balancer applies a change within a second or so of its answer.
    assert _versions(between(requests, stopped + 1.5, stopped + 3.0), 0) == {"1"}
    assert _versions(requests, rolled + 0.5) == {"2"}
    assert scene.service_version() == 2


def test_a_kill_of_the_server_mid_shift_resumes_with_no_request_failed(tmp_path: Path) -> None:
    """kill -9 of a real server process while the listener is at 50 %: the load balancer
    and the tasks keep serving, and the restarted server goes on from the recorded
    weight (the replacement's share never drops) to the end."""
    with killable_ecs_server(tmp_path / "server", SHIPYARD_MINUTE_SECONDS=str(MINUTE)) as server:
        cd = server.client()
        cd.create_application(applicationName=APP, computePlatform="ECS")
        linear = {"linearPercentage": 25, "linearInterval": 4}
        cd.create_deployment_config(
            deploymentConfigName="linear-slow",
            computePlatform="ECS",
            trafficRoutingConfig={"type": "TimeBasedLinear", "timeBasedLinear": linear},
        )
        scene = Scene(server, cd, "crash", "linear-slow")  # type: ignore[arg-type]
        with scene.under_load(tmp_path) as load:
            deployment_id = scene.deploy(2)
            green = scene.replacement_group(deployment_id)
            wait_until(lambda: scene.weight_on(green) == 50, "the shift at 50 %", 90)
            server.kill()
            time.sleep(2.0)  # the load balancer and the tasks serve on, the server is gone
            server.start()
            scene.cd = server.client()
            scene.reaches(deployment_id, "Succeeded")
            ended = time.time()
            time.sleep(1.0)
        requests = load.requests
        _no_failures(requests)
        shares = [w.get(green, 0) for _, w in scene.changes]
        assert shares == sorted(shares), f"the share went back down: {shares}"
        assert [s for s in dict.fromkeys(shares) if s >= 50] == [50, 75, 100], shares
        assert _versions(requests, ended + 0.3) == {"2"}
        assert scene.service_version() == 2
