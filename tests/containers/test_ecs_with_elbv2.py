"""The ECS and ELBv2 halves together: a CODE_DEPLOY service's tasks (on Podman)
registered through the seam in an embedded load balancer's target group (HAProxy), and
reached through its listener."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port
from tests.containers.conftest import httpd_definition
from tests.ecs_support import embedded_ecs_server
from tests.elbv2.conftest import TIME_SCALE_MINUTE
from tests.elbv2.scenario import forward, target_group
from tests.support import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from embedded_ecs_server(tmp_path / "s", minute_seconds=TIME_SCALE_MINUTE)


def test_tasks_serve_through_the_embedded_load_balancer(server: LiveServer) -> None:
    elbv2, ecs = server.client("elbv2"), server.client("ecs")
    lb = elbv2.create_load_balancer(Name="web")["LoadBalancers"][0]["LoadBalancerArn"]
    group = target_group(elbv2, "web-blue", HealthCheckPath="/")
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb, Port=port, DefaultActions=forward(group))
    ecs.create_cluster(clusterName="prod")
    ecs.create_service(
        cluster="prod",
        serviceName="web",
        taskDefinition=httpd_definition(ecs, version="7"),
        desiredCount=2,
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 80}],
    )

    def steady() -> bool:
        found = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
        task_set: dict[str, Any] = found["taskSets"][0]
        return task_set["stabilityStatus"] == "STEADY_STATE" and task_set["runningCount"] == 2

    wait_until(steady, "the service steady behind the load balancer", timeout=120)
    health = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert [h["TargetHealth"]["State"] for h in health] == ["healthy", "healthy"]
    tasks = ecs.describe_tasks(
        cluster="prod", tasks=ecs.list_tasks(cluster="prod", serviceName="web")["taskArns"]
    )["tasks"]
    ports = {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks}
    assert {h["Target"]["Port"] for h in health} == ports
    seen = set()
    for _ in range(6):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            seen.add(answer.read().decode().strip())
    assert all(page.endswith("version 7") for page in seen) and len(seen) == 2
