"""Finding what a request names, with ECS's errors when it is not there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.containers.ecs import names
from shipyard.containers.targets import TargetGroups
from shipyard.server.context import Call
from shipyard.store import ecs as store
from shipyard.store.ecs import Service

Json = dict[str, Any]


def text(call: Call, key: str, *, required: bool = False) -> str | None:
    value = call.body.get(key)
    if value is None:
        if required:
            raise names.invalid(f"{key} is required")
        return None
    if not isinstance(value, str) or not value:
        raise names.invalid(f"{key} must be a non-empty string")
    return value


def active_cluster(conn: Connection, reference: str | None) -> str:
    name = names.cluster_name(reference)
    found = store.get_cluster(conn, name)
    if found is None or found[0] != "ACTIVE":
        raise names.cluster_not_found()
    return name


def service(conn: Connection, cluster: str, reference: str, *, active: bool = True) -> Service:
    found = store.find_service(conn, cluster, names.last_part(reference, "service"))
    if found is None:
        raise names.service_not_found()
    if active and found.status != "ACTIVE":
        raise names.service_not_active()
    return found


def task_set_service(conn: Connection, call: Call) -> tuple[str, Service]:
    """The cluster and the ACTIVE service a task-set call names; the service must run
    task sets (the CODE_DEPLOY or EXTERNAL controller)."""
    cluster = active_cluster(conn, text(call, "cluster", required=True))
    svc = service(conn, cluster, text(call, "service", required=True) or "")
    if svc.doc["deploymentController"]["type"] == "ECS":
        raise names.invalid(
            "Task sets are only for services with the CODE_DEPLOY or EXTERNAL deployment "
            "controller."
        )
    return cluster, svc


def task_definition(conn: Connection, region: str, reference: Any) -> tuple[str, Json]:
    """(ARN, doc) of the ACTIVE task definition ``reference`` names."""
    if not isinstance(reference, str) or not reference:
        raise names.invalid("taskDefinition is required")
    family, revision = names.task_definition_ref(reference)
    found = store.get_task_definition(conn, family, revision)
    if found is None or found[1] != "ACTIVE":
        raise names.client_error("TaskDefinition not found.")
    return names.task_definition_arn(region, family, found[0]), found[3]


def load_balancers(raw: Any, definition: Json, groups: TargetGroups | None) -> list[Json]:
    """loadBalancers checked against the task definition and the target groups."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise names.invalid("loadBalancers must be a list")
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise names.invalid("loadBalancers entries must be objects")
        arn = entry.get("targetGroupArn")
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            raise names.invalid("loadBalancers entries need a targetGroupArn (ALB/NLB)")
        if groups is None or not groups.exists(arn):
            raise names.invalid(f"Unable to find target group: {arn}")
        container, port = entry.get("containerName"), entry.get("containerPort")
        if not _maps(definition, container, port):
            raise names.invalid(
                f"The container {container} does not have a container port {port} "
                "in the task definition."
            )
        out.append({"targetGroupArn": arn, "containerName": container, "containerPort": port})
    return out


def _maps(definition: Json, container: Any, port: Any) -> bool:
    for c in definition["containerDefinitions"]:
        if c["name"] == container:
            return any(p["containerPort"] == port for p in c["portMappings"])
    return False


def scale(raw: Any) -> Json:
    if raw is None:
        return {"value": 100.0, "unit": "PERCENT"}
    if not isinstance(raw, dict):
        raise names.invalid("scale must be an object")
    value, unit = raw.get("value", 100.0), raw.get("unit", "PERCENT")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise names.invalid("scale.value must be between 0 and 100")
    if unit != "PERCENT":
        raise names.invalid("scale.unit must be PERCENT")
    return {"value": float(value), "unit": "PERCENT"}


def desired_count(raw: Any, default: int | None = None) -> int:
    if raw is None and default is not None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 1000:
        raise names.invalid("desiredCount must be an integer between 0 and 1000")
    return raw
