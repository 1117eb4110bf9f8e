"""Task sets on real Podman through the Docker API, driven by boto3: a CODE_DEPLOY
service's tasks serve, a replacement task set reaches STEADY_STATE in its own target
group, the primary moves, a task set scales and drains away, a killed container is
replaced and re-registered, and a restarted server adopts what runs."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest

from shipyard.containers.targets import Target, TargetState
from shipyard.containers.targets_memory import MemoryTargetGroups
from tests.conftest import LiveServer, on_both_databases, start_live_server
from tests.containers.conftest import (
    NO_ELB,
    TG_BLUE,
    TG_GREEN,
    httpd_definition,
    prepare,
    require_podman,
    teardown,
)
from tests.support import wait_until

pytestmark = pytest.mark.e2e


def lb(group: str) -> list[dict[str, Any]]:
    return [{"targetGroupArn": group, "containerName": "web", "containerPort": 80}]


def task_set(ecs: Any, set_id: str, service: str = "web") -> dict[str, Any]:
    found = ecs.describe_task_sets(cluster="prod", service=service, taskSets=[set_id])
    return dict(found["taskSets"][0]) if found["taskSets"] else {}


def steady(ecs: Any, set_id: str, count: int) -> dict[str, Any] | None:
    found = task_set(ecs, set_id)
    done = found["stabilityStatus"] == "STEADY_STATE" and found["runningCount"] == count
    return found if done else None


def healthy_targets(server: LiveServer, group: str) -> set[Target]:
    assert server.services.target_groups is not None
    states = server.services.target_groups.health(group)
    return {t for t, state in states.items() if state is TargetState.HEALTHY}


def page(target: Target) -> str:
    with urllib.request.urlopen(f"http://{target.address}:{target.port}/", timeout=5) as answer:
        return str(answer.read().decode())


def code_deploy_service(ecs: Any, count: int = 3) -> str:
    ecs.create_cluster(clusterName="prod")
    definition = httpd_definition(ecs, version="1")
    service = ecs.create_service(
        cluster="prod",
        serviceName="web",
        taskDefinition=definition,
        desiredCount=count,
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=lb(TG_BLUE),
    )["service"]
    return str(service["taskSets"][0]["id"])


def running_tasks(ecs: Any, set_id: str) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster="prod", serviceName="web", startedBy=set_id)["taskArns"]
    if not arns:
        return []
    tasks = ecs.describe_tasks(cluster="prod", tasks=arns)["tasks"]
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


@on_both_databases
def test_blue_green_task_sets_on_podman(ecs_server: LiveServer, ecs: Any) -> None:
    blue = code_deploy_service(ecs)
    wait_until(lambda: steady(ecs, blue, 3), "the first task set steady", timeout=90)
    blue_targets = healthy_targets(ecs_server, TG_BLUE)
    assert len(blue_targets) == 3
    assert all(page(t).endswith("version 1\n") for t in blue_targets)
    tasks = running_tasks(ecs, blue)
    assert {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks} == {
        t.port for t in blue_targets
    }
    assert {page(t).split()[1] for t in blue_targets} == {t["taskArn"][-32:][:12] for t in tasks}

    second = httpd_definition(ecs, version="2")
    green = ecs.create_task_set(
        cluster="prod",
        service="web",
        taskDefinition=second,
        externalId="d-TEST",
        loadBalancers=lb(TG_GREEN),
        scale={"value": 100, "unit": "PERCENT"},
    )["taskSet"]["id"]
    wait_until(lambda: steady(ecs, green, 3), "the replacement task set steady", timeout=90)
    green_targets = healthy_targets(ecs_server, TG_GREEN)
    assert len(green_targets) == 3 and not green_targets & blue_targets
    assert all(page(t).endswith("version 2\n") for t in green_targets)

    ecs.update_service_primary_task_set(cluster="prod", service="web", primaryTaskSet=green)
    statuses = {
        s["id"]: s["status"]
        for s in ecs.describe_task_sets(cluster="prod", service="web")["taskSets"]
    }
    assert statuses == {blue: "ACTIVE", green: "PRIMARY"}

    ecs.update_task_set(
        cluster="prod", service="web", taskSet=blue, scale={"value": 34, "unit": "PERCENT"}
    )
    assert task_set(ecs, blue)["computedDesiredCount"] == 2  # ceil(3 * 0.34)
    wait_until(lambda: len(healthy_targets(ecs_server, TG_BLUE)) == 2, "blue scaled to 2")
    wait_until(lambda: steady(ecs, blue, 2), "blue steady at 2")

    draining = ecs.delete_task_set(cluster="prod", service="web", taskSet=blue)["taskSet"]
    assert draining["status"] == "DRAINING"
    wait_until(lambda: not task_set(ecs, blue), "the deleted task set gone", timeout=60)
    assert healthy_targets(ecs_server, TG_BLUE) == set()
    assert ecs_server.services.target_groups is not None
    assert ecs_server.services.target_groups.health(TG_BLUE) == {}
    stopped = ecs.list_tasks(cluster="prod", serviceName="web", desiredStatus="STOPPED")
    assert len(stopped["taskArns"]) == 3
    events = [
        e["message"]
        for e in ecs.describe_services(cluster="prod", services=["web"])["services"][0]["events"]
    ]
    assert any("has begun draining connections" in m for m in events)
    assert any("has reached a steady state" in m for m in events)
    assert len(healthy_targets(ecs_server, TG_GREEN)) == 3  # untouched throughout


def test_killed_container_is_replaced_and_reregistered(ecs_server: LiveServer, ecs: Any) -> None:
    blue = code_deploy_service(ecs, count=2)
    wait_until(lambda: steady(ecs, blue, 2), "the task set steady", timeout=90)
    before = healthy_targets(ecs_server, TG_BLUE)
    victim = running_tasks(ecs, blue)[0]
    assert ecs_server.services.ecs is not None
    engine = ecs_server.services.ecs.capacity.client(0)
    engine.containers.get(victim["containers"][0]["runtimeId"]).kill(signal="SIGKILL")

    def replaced() -> bool:
        now = healthy_targets(ecs_server, TG_BLUE)
        return len(now) == 2 and now != before

    wait_until(replaced, "a replacement task registered and healthy", timeout=60)
    wait_until(lambda: steady(ecs, blue, 2), "the task set steady again")
    dead = ecs.describe_tasks(cluster="prod", tasks=[victim["taskArn"]])["tasks"][0]
    assert dead["lastStatus"] == "STOPPED"
    assert dead["stopCode"] == "EssentialContainerExited"
    assert "exited with code 137" in dead["stoppedReason"]
    killed = Target("127.0.0.1", victim["containers"][0]["networkBindings"][0]["hostPort"])
    assert ecs_server.services.target_groups is not None
    assert killed not in ecs_server.services.target_groups.health(TG_BLUE)


def test_stop_task_drains_then_stops_and_is_replaced(ecs_server: LiveServer, ecs: Any) -> None:
    blue = code_deploy_service(ecs, count=1)
    wait_until(lambda: steady(ecs, blue, 1), "the task set steady", timeout=90)
    (task,) = running_tasks(ecs, blue)
    answer = ecs.stop_task(cluster="prod", task=task["taskArn"], reason="testing")["task"]
    assert answer["desiredStatus"] == "STOPPED"

    def stopped() -> dict[str, Any] | None:
        found = ecs.describe_tasks(cluster="prod", tasks=[task["taskArn"]])["tasks"][0]
        return found if found["lastStatus"] == "STOPPED" else None

    done = wait_until(stopped, "the task stopped", timeout=60)
    assert (done["stopCode"], done["stoppedReason"]) == ("UserInitiated", "testing")
    wait_until(lambda: steady(ecs, blue, 1), "a replacement running", timeout=60)
    assert running_tasks(ecs, blue)[0]["taskArn"] != task["taskArn"]


def test_restarted_server_adopts_running_tasks(tmp_path: Path) -> None:
    require_podman()
    data_dir = tmp_path / "server"
    first = start_live_server(data_dir, ecs_reconcile_seconds=0.2, **NO_ELB)
    server = next(first)
    try:
        prepare(server)
        ecs = server.client("ecs")
        blue = code_deploy_service(ecs, count=2)
        wait_until(lambda: steady(ecs, blue, 2), "the task set steady", timeout=90)
        before = {t["taskArn"] for t in running_tasks(ecs, blue)}
        ports = healthy_targets(server, TG_BLUE)
    finally:
        next(first, None)  # the server stops; its containers keep running
    second = start_live_server(data_dir, ecs_reconcile_seconds=0.2, **NO_ELB)
    server = next(second)
    try:
        prepare(server)
        ecs = server.client("ecs")
        wait_until(
            lambda: healthy_targets(server, TG_BLUE) == ports, "the same tasks registered again"
        )
        assert {t["taskArn"] for t in running_tasks(ecs, blue)} == before
        wait_until(lambda: steady(ecs, blue, 2), "the adopted task set steady")
        assert {t["taskArn"] for t in running_tasks(ecs, blue)} == before  # none replaced
    finally:
        next(second, None)
        teardown(server)


def test_a_stopping_task_serves_until_its_target_has_drained(
    ecs_server: LiveServer, ecs: Any
) -> None:
    groups = ecs_server.services.target_groups
    assert isinstance(groups, MemoryTargetGroups)
    groups.drain_seconds = 3.0
    blue = code_deploy_service(ecs, count=1)
    wait_until(lambda: steady(ecs, blue, 1), "the task set steady", timeout=90)
    (task,) = running_tasks(ecs, blue)
    (target,) = healthy_targets(ecs_server, TG_BLUE)
    ecs.stop_task(cluster="prod", task=task["taskArn"])

    def status() -> str:
        return str(
            ecs.describe_tasks(cluster="prod", tasks=[task["taskArn"]])["tasks"][0]["lastStatus"]
        )

    wait_until(lambda: status() == "DEACTIVATING", "the task deregistering")
    assert groups.health(TG_BLUE).get(target) is TargetState.DRAINING
    assert page(target).startswith("task ")  # still serving while it drains
    wait_until(lambda: status() == "STOPPED", "the task stopped after the drain", timeout=30)
    assert target not in groups.health(TG_BLUE)
