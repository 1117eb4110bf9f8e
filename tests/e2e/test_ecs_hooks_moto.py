"""ECS hooks end to end: the five hookable events invoke real functions on the embedded
function host, which report with boto3's put_lifecycle_event_hook_execution_status
through the server; the service and load balancer are moto's (containers_backend
"aws"). A failing AfterAllowTestTraffic hook ends the deployment with production
never touched: the production listener never forwards to the replacement, the test
listener goes back, and the replacement task set is deleted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from shipyard.platforms.ecs_appspec import HOOK_EVENTS
from shipyard.store import schema
from tests.conftest import LiveServer, start_live_server
from tests.ecs_support import (
    MotoEcs,
    Stack,
    appspec,
    group_members,
    moto_settings,
    revision,
    weights,
)
from tests.functions.conftest import python_function
from tests.moto_support import moto_endpoint
from tests.support import wait_until

pytestmark = pytest.mark.e2e

APP = "shop"
MINUTE = 0.5
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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    yield from moto_endpoint()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("ecs-hooks") / "server",
        minute_seconds=MINUTE,
        hook_timeout=20.0,
        **moto_settings(moto_url),
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
    return client


def _hooks(failing: str | None = None) -> str:
    lines = ["Hooks:"]
    for event in HOOK_EVENTS:
        lines.append(f"  - {event}: CodeDeployHook_{'Failed' if event == failing else 'Succeeded'}")
    return "\n".join(lines) + "\n"


def _group(cd: Any, aws: MotoEcs, name: str, **extra: Any) -> Stack:
    stack = aws.stack(name)
    cd.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=name,
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        **group_members(stack, **extra),
    )
    return stack


def _status(cd: Any, deployment_id: str) -> str:
    return str(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])


def _executions(server: LiveServer, deployment_id: str) -> list[tuple[str, str]]:
    table = schema.hook_executions
    with server.services.db.tx() as conn:
        rows = conn.execute(
            select(table.c.event, table.c.status)
            .where(table.c.deployment_id == deployment_id)
            .order_by(table.c.created)
        ).all()
    return [(str(event), str(status)) for event, status in rows]


def test_every_hook_function_is_invoked_once_in_order(
    server: LiveServer, cd: Any, moto_url: str
) -> None:
    aws = MotoEcs(moto_url)
    stack = _group(cd, aws, "hooked")
    deployment_id = cd.create_deployment(
        applicationName=APP,
        deploymentGroupName="hooked",
        revision=revision(appspec(stack.task_definitions[1], hooks=_hooks())),
    )["deploymentId"]

    wait_until(lambda: _status(cd, deployment_id) == "Succeeded", "the hooked deployment")

    assert _executions(server, deployment_id) == [(e, "Succeeded") for e in HOOK_EVENTS]
    (left,) = aws.task_sets(stack)
    assert left["externalId"] == deployment_id


def test_a_failing_test_traffic_hook_never_touches_production(
    server: LiveServer, cd: Any, moto_url: str
) -> None:
    aws = MotoEcs(moto_url)
    rollback = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    stack = _group(cd, aws, "refused", autoRollbackConfiguration=rollback)
    blue, green = stack.target_group_arns
    production: list[dict[str, int]] = []
    test_route: list[dict[str, int]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            production.append(weights(aws.elbv2, stack.prod_listener))
            test_route.append(weights(aws.elbv2, stack.test_listener))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    content = appspec(stack.task_definitions[1], hooks=_hooks(failing="AfterAllowTestTraffic"))
    deployment_id = cd.create_deployment(
        applicationName=APP, deploymentGroupName="refused", revision=revision(content)
    )["deploymentId"]

    wait_until(lambda: _status(cd, deployment_id) == "Failed", "the hook to fail the deployment")
    wait_until(lambda: len(aws.task_sets(stack)) == 1, "the replacement to be deleted")
    done.set()
    watcher.join(5)

    assert all(w.get(green, 0) == 0 for w in production), production
    assert {green: 100, blue: 0} in test_route  # the test route did reach the replacement
    assert weights(aws.elbv2, stack.test_listener) == {blue: 100, green: 0}
    (left,) = aws.task_sets(stack)
    assert (left["externalId"], left["status"]) == ("", "PRIMARY")
    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert "rollbackInfo" in info
    target = cd.get_deployment_target(
        deploymentId=deployment_id, targetId=f"{stack.cluster}:{stack.service}"
    )["deploymentTarget"]["ecsTarget"]
    statuses = {e["lifecycleEventName"]: e["status"] for e in target["lifecycleEvents"]}
    assert statuses["AfterAllowTestTraffic"] == "Failed"
    assert statuses["AllowTraffic"] == "Skipped"
