"""The ECS API through boto3 against a live server, where no task has to run: clusters,
task definitions, services and task sets at desiredCount 0, the errors the model names,
Describe* failures, roles and the audit. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipyard.containers.targets_memory import MemoryTargetGroups
from shipyard.store import audit
from tests.conftest import LiveServer, on_both_databases, start_live_server
from tests.containers.conftest import NO_ELB, TG_BLUE, TG_GREEN, teardown
from tests.server.test_roles import client_as, make_user

IMAGE = "localhost/shipyard-httpd:1"
WEB = {"name": "web", "image": IMAGE, "portMappings": [{"containerPort": 80}], "memory": 32}


@pytest.fixture
def server(tmp_path: Path, database: str) -> Iterator[LiveServer]:
    running = start_live_server(tmp_path / "server", database, **NO_ELB)
    live = next(running)
    groups = live.services.target_groups
    assert isinstance(groups, MemoryTargetGroups)
    groups.create(TG_BLUE)
    groups.create(TG_GREEN)
    try:
        yield live
    finally:
        next(running, None)
        teardown(live)  # a service scaled above 0 here makes the server start Podman


@pytest.fixture
def ecs(server: LiveServer) -> Any:
    return server.client("ecs")


def error(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def blue(port: int = 80) -> list[dict[str, Any]]:
    return [{"targetGroupArn": TG_BLUE, "containerName": "web", "containerPort": port}]


def code_deploy_service(ecs: Any, name: str = "svc", **extra: Any) -> dict[str, Any]:
    ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    service: dict[str, Any] = ecs.create_service(
        cluster="prod",
        serviceName=name,
        taskDefinition="web",
        desiredCount=0,
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=blue(),
        **extra,
    )["service"]
    return service


@on_both_databases
def test_clusters_and_task_definitions(ecs: Any) -> None:
    cluster = ecs.create_cluster(clusterName="prod")["cluster"]
    assert cluster["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/prod"
    assert cluster["status"] == "ACTIVE" and cluster["runningTasksCount"] == 0
    assert ecs.create_cluster(clusterName="prod")["cluster"]["clusterName"] == "prod"
    described = ecs.describe_clusters(clusters=["prod", "nope"])
    assert [c["clusterName"] for c in described["clusters"]] == ["prod"]
    assert described["failures"] == [
        {"arn": "arn:aws:ecs:us-east-1:000000000000:cluster/nope", "reason": "MISSING"}
    ]
    assert ecs.list_clusters()["clusterArns"] == [cluster["clusterArn"]]

    first = ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    second = ecs.register_task_definition(
        family="web",
        containerDefinitions=[
            {**WEB, "command": ["/bin/serve"], "environment": [{"name": "A", "value": "b"}]}
        ],
        tags=[{"key": "team", "value": "x"}],
    )
    assert first["taskDefinition"]["revision"] == 1
    assert second["taskDefinition"]["taskDefinitionArn"].endswith(":task-definition/web:2")
    latest = ecs.describe_task_definition(taskDefinition="web", include=["TAGS"])
    assert latest["taskDefinition"]["revision"] == 2
    assert latest["taskDefinition"]["containerDefinitions"][0]["environment"] == [
        {"name": "A", "value": "b"}
    ]
    assert latest["tags"] == [{"key": "team", "value": "x"}]
    ecs.deregister_task_definition(taskDefinition="web:2")
    assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"]["revision"] == 1
    assert ecs.describe_task_definition(taskDefinition="web:2")["taskDefinition"]["status"] == (
        "INACTIVE"
    )
    listed = ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"]
    assert [arn.rsplit(":", 1)[-1] for arn in listed] == ["1"]

    ecs.delete_cluster(cluster="prod")
    assert ecs.describe_clusters(clusters=["prod"])["clusters"][0]["status"] == "INACTIVE"
    assert ecs.list_clusters()["clusterArns"] == []


def test_task_definition_errors(ecs: Any) -> None:
    register = ecs.register_task_definition
    assert error(register, family="web", containerDefinitions=[{**WEB, "essential": False}]) == (
        "ClientException",
        "Task definition must have at least one essential container.",
    )
    code, message = error(register, family="web", containerDefinitions=[{"name": "x", "image": ""}])
    assert code == "ClientException" and "image" in message
    code, message = error(register, family="web", networkMode="host", containerDefinitions=[WEB])
    assert code == "ClientException" and "bridge or awsvpc" in message
    bad_check = {**WEB, "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 1}}
    code, message = error(register, family="web", containerDefinitions=[bad_check])
    assert code == "ClientException" and "interval" in message
    assert error(ecs.describe_task_definition, taskDefinition="nope")[0] == "ClientException"


@on_both_databases
def test_code_deploy_service_and_task_sets(ecs: Any) -> None:
    ecs.create_cluster(clusterName="prod")
    service = code_deploy_service(ecs)
    assert service["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/prod/svc"
    assert service["deploymentController"] == {"type": "CODE_DEPLOY"}
    (primary,) = service["taskSets"]
    assert primary["status"] == "PRIMARY" and primary["id"].startswith("ecs-svc/")
    assert primary["taskSetArn"].endswith(f":task-set/prod/svc/{primary['id']}")
    assert primary["stabilityStatus"] == "STEADY_STATE"  # 0 of 0 tasks

    ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    green = [{"targetGroupArn": TG_GREEN, "containerName": "web", "containerPort": 80}]
    created = ecs.create_task_set(
        cluster="prod",
        service="svc",
        taskDefinition="web:2",
        externalId="d-ABCDEF123",
        loadBalancers=green,
        scale={"value": 50, "unit": "PERCENT"},
    )["taskSet"]
    assert created["status"] == "ACTIVE" and created["externalId"] == "d-ABCDEF123"
    assert created["scale"] == {"value": 50.0, "unit": "PERCENT"}
    sets = ecs.describe_task_sets(
        cluster="prod", service="svc", taskSets=[created["taskSetArn"], "ecs-svc/1"]
    )
    assert [s["id"] for s in sets["taskSets"]] == [created["id"]]
    assert sets["failures"] == [{"arn": "ecs-svc/1", "reason": "MISSING"}]

    moved = ecs.update_service_primary_task_set(
        cluster="prod", service="svc", primaryTaskSet=created["taskSetArn"]
    )["taskSet"]
    assert moved["status"] == "PRIMARY"
    described = ecs.describe_services(cluster="prod", services=["svc"])["services"][0]
    statuses = {s["id"]: s["status"] for s in described["taskSets"]}
    assert statuses == {primary["id"]: "ACTIVE", created["id"]: "PRIMARY"}
    assert described["taskDefinition"].endswith("web:2")

    scaled = ecs.update_task_set(
        cluster="prod",
        service="svc",
        taskSet=created["id"],
        scale={"value": 100, "unit": "PERCENT"},
    )["taskSet"]
    assert scaled["scale"]["value"] == 100.0
    deleted = ecs.delete_task_set(cluster="prod", service="svc", taskSet=primary["id"])["taskSet"]
    assert deleted["status"] == "DRAINING"

    ecs.update_service(cluster="prod", service="svc", desiredCount=0)
    assert ecs.list_services(cluster="prod")["serviceArns"] == [service["serviceArn"]]
    gone = ecs.delete_service(cluster="prod", service="svc")["service"]
    assert gone["status"] in ("DRAINING", "INACTIVE")


def test_ecs_controller_deployments(ecs: Any) -> None:
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    service = ecs.create_service(cluster="prod", serviceName="plain", taskDefinition="web")[
        "service"
    ]
    assert service["taskSets"] == [] and service["desiredCount"] == 0
    (deployment,) = service["deployments"]
    assert deployment["status"] == "PRIMARY" and deployment["rolloutState"] == "COMPLETED"
    ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    updated = ecs.update_service(cluster="prod", service="plain", taskDefinition="web:2")["service"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert updated["taskDefinition"].endswith("web:2")
    code, message = error(
        ecs.create_task_set, cluster="prod", service="plain", taskDefinition="web"
    )
    assert code == "InvalidParameterException" and "CODE_DEPLOY or EXTERNAL" in message
    external = ecs.create_service(
        cluster="prod", serviceName="ext", deploymentController={"type": "EXTERNAL"}
    )["service"]
    assert external["taskSets"] == [] and "taskDefinition" not in external


def test_unknown_names_and_bad_references(ecs: Any) -> None:
    assert error(ecs.describe_services, cluster="nope", services=["x"])[0] == (
        "ClusterNotFoundException"
    )
    ecs.create_cluster(clusterName="prod")
    missing = ecs.describe_services(cluster="prod", services=["ghost"])
    assert missing["failures"][0]["reason"] == "MISSING"
    assert error(ecs.update_service, cluster="prod", service="ghost", desiredCount=1)[0] == (
        "ServiceNotFoundException"
    )
    code, _ = error(ecs.create_service, cluster="prod", serviceName="s", taskDefinition="nope:3")
    assert code == "ClientException"
    ecs.register_task_definition(family="web", containerDefinitions=[WEB])
    unknown_tg = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/1"
    code, message = error(
        ecs.create_service,
        cluster="prod",
        serviceName="s",
        taskDefinition="web",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": unknown_tg, "containerName": "web", "containerPort": 80}],
    )
    assert (code, message) == (
        "InvalidParameterException",
        f"Unable to find target group: {unknown_tg}",
    )
    code, message = error(
        ecs.create_service,
        cluster="prod",
        serviceName="s",
        taskDefinition="web",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=blue(8080),
    )
    assert code == "InvalidParameterException" and "container port 8080" in message
    assert ecs.list_services(cluster="prod")["serviceArns"] == []  # nothing half-made

    code_deploy_service(ecs)
    assert error(lambda: code_deploy_service(ecs))[0] == "InvalidParameterException"  # again
    code, message = error(ecs.update_service, cluster="prod", service="svc", taskDefinition="web:1")
    assert code == "InvalidParameterException" and "CodeDeploy" in message
    assert (
        error(
            ecs.update_task_set,
            cluster="prod",
            service="svc",
            taskSet="ecs-svc/1",
            scale={"value": 5},
        )[0]
        == "TaskSetNotFoundException"
    )
    code, _ = error(
        ecs.update_task_set,
        cluster="prod",
        service="svc",
        taskSet=ecs.describe_services(cluster="prod", services=["svc"])["services"][0]["taskSets"][
            0
        ]["id"],
        scale={"value": 150, "unit": "PERCENT"},
    )
    assert code == "InvalidParameterException"
    ecs.update_service(cluster="prod", service="svc", desiredCount=2)
    code, message = error(ecs.delete_service, cluster="prod", service="svc")
    assert code == "InvalidParameterException" and "scaled above 0" in message
    assert error(ecs.describe_tasks, cluster="prod", tasks=[])[0] == "InvalidParameterException"
    found = ecs.describe_tasks(cluster="prod", tasks=["0" * 32])
    assert found["failures"][0]["reason"] == "MISSING"
    assert error(ecs.stop_task, cluster="prod", task="0" * 32)[0] == "InvalidParameterException"
    assert error(ecs.delete_cluster, cluster="prod")[0] == "ClusterContainsServicesException"


def test_roles_and_audit(server: LiveServer, ecs: Any) -> None:
    ecs.create_cluster(clusterName="prod")
    code_deploy_service(ecs)
    viewer = client_as(server, make_user(server, "v", "viewer"), "ecs")
    deployer = client_as(server, make_user(server, "d", "deployer"), "ecs")
    assert viewer.list_services(cluster="prod")["serviceArns"]
    code, message = error(viewer.update_service, cluster="prod", service="svc", desiredCount=1)
    assert code == "AccessDeniedException" and "ecs:UpdateService" in message
    deployer.update_service(cluster="prod", service="svc", desiredCount=0)
    code, message = error(deployer.create_cluster, clusterName="other")
    assert code == "AccessDeniedException" and "admin role" in message
    with server.services.db.tx() as conn:
        actions = [entry["action"] for entry in audit.entries(conn, limit=50)]
    assert "ecs:CreateService" in actions and "ecs:UpdateService" in actions
    assert "ecs:ListServices" not in actions
