"""RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
ListTaskDefinitions."""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs import cluster_ops, names, render
from shipyard.containers.ecs.container_definitions import check_containers
from shipyard.server.context import Call
from shipyard.store import ecs as store

Json = dict[str, Any]
NETWORK_MODES = ("bridge", "awsvpc")
KEPT = (
    "taskRoleArn",
    "executionRoleArn",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "runtimePlatform",
)


def register_task_definition(call: Call) -> Json:
    body = call.body
    family = body.get("family")
    if not isinstance(family, str) or not names.NAME.fullmatch(family):
        raise names.client_error(
            "Family may contain only letters, numbers, hyphens and underscores (up to 255)."
        )
    mode = body.get("networkMode", "bridge")
    if mode not in NETWORK_MODES:
        raise names.client_error(
            f"networkMode {mode!r} is not supported here: use bridge or awsvpc (each task "
            "publishes its ports on free host ports)"
        )
    for key in ("cpu", "memory"):
        if key in body and not isinstance(body[key], str):
            raise names.client_error(f"{key} must be a string (e.g. '256')")
    doc: Json = {k: body[k] for k in KEPT if k in body}
    doc["networkMode"] = mode
    doc["containerDefinitions"] = check_containers(body.get("containerDefinitions"), mode)
    doc.setdefault("volumes", [])
    doc.setdefault("placementConstraints", [])
    doc["tags"] = body.get("tags", [])
    with call.services.db.tx() as conn:
        revision = store.register_task_definition(conn, family, doc, call.now())
        return _answer(conn, call, family, revision)


def describe_task_definition(call: Call) -> Json:
    family, revision = names.task_definition_ref(_reference(call))
    with call.services.db.tx() as conn:
        found = store.get_task_definition(conn, family, revision)
        if found is None:
            raise names.client_error("Unable to describe task definition.")
        return _answer(conn, call, family, found[0])


def deregister_task_definition(call: Call) -> Json:
    family, revision = names.task_definition_ref(_reference(call))
    if revision is None:
        raise names.client_error("A revision is required to deregister a task definition.")
    with call.services.db.tx() as conn:
        if store.get_task_definition(conn, family, revision) is None:
            raise names.client_error("The specified task definition does not exist.")
        store.set_task_definition_status(conn, family, revision, "INACTIVE")
        return _answer(conn, call, family, revision)


def list_task_definitions(call: Call) -> Json:
    family = call.body.get("familyPrefix")
    status = call.body.get("status", "ACTIVE")
    if status not in ("ACTIVE", "INACTIVE"):
        raise names.invalid("status must be ACTIVE or INACTIVE")
    descending = call.body.get("sort", "ASC") == "DESC"
    region = call.services.config.region
    with call.services.db.tx() as conn:
        found = store.list_task_definitions(conn, family, status, descending)
    arns = [names.task_definition_arn(region, f, r) for f, r in found]
    return cluster_ops.page(call, arns, "taskDefinitionArns")


def _reference(call: Call) -> str:
    reference = call.body.get("taskDefinition")
    if not isinstance(reference, str) or not reference:
        raise names.client_error("taskDefinition is required")
    return reference


def _answer(conn: Any, call: Call, family: str, revision: int) -> Json:
    found = store.get_task_definition(conn, family, revision)
    assert found is not None
    _rev, status, registered, doc = found
    region = call.services.config.region
    return {
        "taskDefinition": render.task_definition(region, family, revision, status, registered, doc),
        "tags": doc.get("tags", []),
    }
