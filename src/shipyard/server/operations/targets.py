"""Deployment targets, the deprecated deployment-instance operations, and the
Shipyard extension that returns a lifecycle event's whole script output."""

from __future__ import annotations

from typing import Any

from shipyard.engine.state import TargetState
from shipyard.errors import ApiError
from shipyard.model import DeploymentStatus, TargetStatus
from shipyard.platforms.ecs_target import TaskSetInfo
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import ecs_deployments
from shipyard.server.operations.deployments import _deployment_id, load_deployment
from shipyard.server.operations.render import deployment_target, instance_summary
from shipyard.store import deployments as store
from shipyard.store.deployments import StoredDeployment

TARGET_STATUSES = [s.value for s in TargetStatus]
LABELS = ["Blue", "Green"]


def _started(call: Call) -> StoredDeployment:
    stored = load_deployment(call, _deployment_id(call.body))
    if stored.state.status == DeploymentStatus.CREATED:
        raise ApiError("DeploymentNotStartedException", "The deployment has not started")
    return stored


def _target(stored: StoredDeployment, target_id: Any, missing: str) -> TargetState:
    if not isinstance(target_id, str) or not target_id:
        raise ApiError("InvalidDeploymentTargetIdException", f"Not a target id: {target_id!r}")
    target = stored.state.targets.get(target_id)
    if target is None:
        raise ApiError(missing, f"{target_id} is not a target of {stored.state.deployment_id}")
    return target


async def _task_sets(call: Call, stored: StoredDeployment) -> list[TaskSetInfo] | None:
    if stored.info.get("computePlatform") != "ECS":
        return None
    return await ecs_deployments.task_sets(call, stored)


async def batch_get_targets(call: Call) -> Json:
    stored = _started(call)
    ids = validate.batch(
        validate.required(call.body, "targetIds", "DeploymentTargetIdRequiredException"),
        25,
        "InvalidDeploymentTargetIdException",
        "DeploymentTargetListSizeExceededException",
        "targetIds",
    )
    region = call.services.config.region
    targets = [_target(stored, t, "DeploymentTargetDoesNotExistException") for t in ids]
    task_sets = await _task_sets(call, stored)
    return {
        "deploymentTargets": [
            deployment_target(stored, target, region, task_sets) for target in targets
        ]
    }


async def get_target(call: Call) -> Json:
    stored = _started(call)
    target_id = validate.required(call.body, "targetId", "DeploymentTargetIdRequiredException")
    target = _target(stored, target_id, "DeploymentTargetDoesNotExistException")
    task_sets = await _task_sets(call, stored)
    region = call.services.config.region
    return {"deploymentTarget": deployment_target(stored, target, region, task_sets)}


def _filtered_ids(
    call: Call, stored: StoredDeployment, statuses: list[str], labels: list[str]
) -> Json:
    ids = [
        t.target_id
        for t in stored.state.targets.values()
        if (not statuses or t.status.value in statuses) and (not labels or t.label in labels)
    ]
    page, token = validate.paginate(sorted(ids), call.body.get("nextToken"))
    return {"ids": page, "token": token}


def list_targets(call: Call) -> Json:
    stored = _started(call)
    filters = call.body.get("targetFilters") or {}
    if not isinstance(filters, dict):
        raise ApiError("InvalidTargetFilterNameException", "targetFilters must be a map")
    for key, values in filters.items():
        if key == "TargetStatus":
            for value in values:
                validate.enum(value, TARGET_STATUSES, "InvalidInstanceStatusException", key)
        elif key == "ServerInstanceLabel":
            for value in values:
                validate.enum(value, LABELS, "InvalidInstanceTypeException", key)
        else:
            raise ApiError("InvalidTargetFilterNameException", f"Unknown target filter {key!r}")
    # In-place targets carry no Blue/Green label, so a label filter matches none of them.
    found = _filtered_ids(
        call,
        stored,
        list(filters.get("TargetStatus") or []),
        list(filters.get("ServerInstanceLabel") or []),
    )
    result: Json = {"targetIds": found["ids"]}
    if found["token"]:
        result["nextToken"] = found["token"]
    return result


def batch_get_instances(call: Call) -> Json:
    stored = load_deployment(call, _deployment_id(call.body))
    ids = validate.batch(
        validate.required(call.body, "instanceIds", "InstanceIdRequiredException"),
        25,
        "InvalidInstanceNameException",
        "BatchLimitExceededException",
        "instanceIds",
    )
    summaries = []
    missing = []
    for instance_id in ids:
        target = stored.state.targets.get(instance_id)
        if target is None:
            missing.append(instance_id)
        else:
            summaries.append(instance_summary(stored.state.deployment_id, target))
    result: Json = {"instancesSummary": summaries}
    if missing:
        result["errorMessage"] = f"Not targets of this deployment: {', '.join(missing)}"
    return result


def get_instance(call: Call) -> Json:
    stored = load_deployment(call, _deployment_id(call.body))
    instance_id = validate.required(call.body, "instanceId", "InstanceIdRequiredException")
    target = _target(stored, instance_id, "InstanceDoesNotExistException")
    return {"instanceSummary": instance_summary(stored.state.deployment_id, target)}


def list_instances(call: Call) -> Json:
    stored = _started(call)
    statuses = call.body.get("instanceStatusFilter") or []
    for value in statuses:
        validate.enum(value, TARGET_STATUSES, "InvalidInstanceStatusException", "status filter")
    for value in call.body.get("instanceTypeFilter") or []:
        validate.enum(value, LABELS, "InvalidInstanceTypeException", "instanceTypeFilter")
    found = _filtered_ids(
        call, stored, list(statuses), list(call.body.get("instanceTypeFilter") or [])
    )
    result: Json = {"instancesList": found["ids"]}
    if found["token"]:
        result["nextToken"] = found["token"]
    return result


def get_event_log(call: Call) -> Json:
    """Shipyard extension: the whole script output of a target's lifecycle events."""
    stored = load_deployment(call, _deployment_id(call.body))
    target_id = validate.required(call.body, "targetId", "DeploymentTargetIdRequiredException")
    target = _target(stored, target_id, "DeploymentTargetDoesNotExistException")
    event = call.body.get("lifecycleEventName")
    if event is not None and event not in [e.name for e in target.events]:
        raise ApiError("InvalidInputException", f"No lifecycle event {event!r} on this target")
    with call.services.db.tx() as conn:
        chunks = store.read_logs(conn, stored.state.deployment_id, target.target_id, event)
    texts: dict[str, list[str]] = {}
    for name, chunk in chunks:
        texts.setdefault(name, []).append(chunk)
    return {
        "events": [
            {"lifecycleEventName": e.name, "log": "".join(texts.get(e.name, []))}
            for e in target.events
            if event is None or e.name == event
        ]
    }


OPERATIONS: dict[str, Handler] = {
    "BatchGetDeploymentTargets": batch_get_targets,
    "GetDeploymentTarget": get_target,
    "ListDeploymentTargets": list_targets,
    "BatchGetDeploymentInstances": batch_get_instances,
    "GetDeploymentInstance": get_instance,
    "ListDeploymentInstances": list_instances,
    "ShipyardGetLifecycleEventLog": get_event_log,
}
