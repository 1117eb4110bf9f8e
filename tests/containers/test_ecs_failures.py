"""Tasks that cannot run, on real Podman: an image that does not exist, a container that
exits at once, a fixed host port already taken, a failing container health check. Each
ends in STOPPED tasks with ECS's stopCode and a clear stoppedReason, service events say
why, and the task set backs off instead of looping hot."""

from __future__ import annotations

import re
import socket
from typing import Any

import pytest

from shipyard.containers.ecs.images import HTTPD_IMAGE
from tests.conftest import LiveServer
from tests.containers.conftest import TG_BLUE, httpd_definition
from tests.support import wait_until

pytestmark = pytest.mark.e2e


def service_of(ecs: Any, definition: str, count: int = 1, **extra: Any) -> str:
    ecs.create_cluster(clusterName="prod")
    service = ecs.create_service(
        cluster="prod",
        serviceName="web",
        taskDefinition=definition,
        desiredCount=count,
        deploymentController={"type": "CODE_DEPLOY"},
        **extra,
    )["service"]
    return str(service["taskSets"][0]["id"])


def stopped_tasks(ecs: Any) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="prod", serviceName="web", desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return []
    tasks = ecs.describe_tasks(cluster="prod", tasks=arns)["tasks"]
    return [t for t in tasks if t["lastStatus"] == "STOPPED"]


def events(ecs: Any) -> list[str]:
    service = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    return [e["message"] for e in service["events"]]


def waits(ecs: Any) -> list[float]:
    """The back-off waits the service events announced, oldest first."""
    found = [re.search(r"Next attempt in ([0-9.]+) s", m) for m in reversed(events(ecs))]
    return [float(m.group(1)) for m in found if m]


def backs_off(ecs: Any, at_least: int) -> list[dict[str, Any]]:
    """Wait for ``at_least`` failed tasks; each failure doubled the wait before the next
    attempt (1 s, 2 s, 4 s...), one event per failure, so failing never loops hot."""
    failed = wait_until(lambda: (s := stopped_tasks(ecs)) and len(s) >= at_least and s, "failures")
    announced = waits(ecs)
    assert announced[:3] == [1.0, 2.0, 4.0][: len(announced[:3])], announced
    assert len(announced) >= at_least - 1
    assert len(stopped_tasks(ecs)) <= len(announced) + 1  # no attempt without its wait
    return failed


def test_missing_image(ecs_server: LiveServer, ecs: Any) -> None:
    definition = httpd_definition(ecs, image="localhost/no-such-image:9")
    set_id = service_of(ecs, definition)
    failed = backs_off(ecs, 3)
    assert all(t["stopCode"] == "TaskFailedToStart" for t in failed)
    assert all(t["stoppedReason"].startswith("CannotPullContainerError:") for t in failed)
    assert "localhost/no-such-image:9" in failed[0]["stoppedReason"]
    found = ecs.describe_task_sets(cluster="prod", service="web", taskSets=[set_id])["taskSets"][0]
    assert found["stabilityStatus"] == "STABILIZING" and found["runningCount"] == 0


def test_container_that_exits_at_once(ecs_server: LiveServer, ecs: Any) -> None:
    definition = httpd_definition(ecs, command=["/bin/sh", "-c", "exit 3"])
    service_of(ecs, definition)
    failed = backs_off(ecs, 3)
    assert all(t["stopCode"] == "EssentialContainerExited" for t in failed)
    assert "exited with code 3" in failed[0]["stoppedReason"]
    assert any("unable to consistently start tasks" in m for m in events(ecs))


def test_fixed_host_port_in_use(ecs_server: LiveServer, ecs: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        definition = httpd_definition(
            ecs, portMappings=[{"containerPort": 80, "hostPort": port, "protocol": "tcp"}]
        )
        service_of(ecs, definition)
        failed = backs_off(ecs, 2)
    assert failed[0]["stopCode"] == "TaskFailedToStart"
    assert failed[0]["stoppedReason"] == (
        f"RESOURCE:PORTS: host port {port} of container web is already in use on 127.0.0.1"
    )


def test_failing_health_check_replaces_tasks(ecs_server: LiveServer, ecs: Any) -> None:
    check = {"command": ["CMD-SHELL", "test -f /no-such-file"], "interval": 5, "retries": 1}
    definition = httpd_definition(ecs, healthCheck=check)
    service_of(
        ecs,
        definition,
        loadBalancers=[{"targetGroupArn": TG_BLUE, "containerName": "web", "containerPort": 80}],
    )
    failed = wait_until(
        lambda: stopped_tasks(ecs), "a task stopped by its health check", timeout=60
    )
    assert failed[0]["stoppedReason"] == "Task failed container health checks"
    assert failed[0]["healthStatus"] == "UNHEALTHY"


def test_image_name_in_the_definition_is_used_as_is(ecs_server: LiveServer, ecs: Any) -> None:
    """The locally built image runs by name, with no registry involved."""
    service_of(ecs, httpd_definition(ecs, image=HTTPD_IMAGE))
    wait_until(
        lambda: (
            ecs.describe_services(cluster="prod", services=["web"])["services"][0]["runningCount"]
            == 1
        ),
        "the task running",
    )
