"""Wire shapes of deployments and targets, built from stored state."""

from __future__ import annotations

from typing import Any

from shipyard.engine.state import DeploymentState, TargetState
from shipyard.model import (
    ACCOUNT_ID,
    TERMINAL_DEPLOYMENT_STATUSES,
    DeploymentStatus,
    TargetStatus,
)
from shipyard.platforms.ecs_target import TaskSetInfo
from shipyard.store.deployments import StoredDeployment


def overview(state: DeploymentState) -> dict[str, int]:
    counts = {
        name: 0 for name in ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")
    }
    for target in state.targets.values():
        if target.status.value in counts:
            counts[target.status.value] += 1
        elif target.status == TargetStatus.UNKNOWN:
            counts["Pending"] += 1
    return counts


def deployment_info(stored: StoredDeployment) -> dict[str, Any]:
    state = stored.state
    info = {k: v for k, v in stored.info.items() if k not in _PRIVATE_INFO}
    info.update(
        deploymentId=state.deployment_id,
        applicationName=stored.application_name,
        deploymentGroupName=stored.group_name,
        status=state.status.value,
        createTime=state.create_time,
        deploymentOverview=overview(state),
    )
    if state.start_time is not None:
        info["startTime"] = state.start_time
    if state.complete_time is not None:
        info["completeTime"] = state.complete_time
    if state.error_code:
        info["errorInformation"] = {"code": state.error_code, "message": state.error_message or ""}
    if state.phase is not None:
        info["instanceTerminationWaitTimeStarted"] = state.terminate_at is not None
    messages = list(info.get("deploymentStatusMessages") or [])
    if state.status not in TERMINAL_DEPLOYMENT_STATUSES:
        if state.awaiting_approval:
            messages.append("Waiting for approval (shipyard approve) before starting hosts")
        if state.paused:
            messages.append("Paused: no new host starts until resumed (shipyard resume)")
        if state.status == DeploymentStatus.BAKING and state.bake_until is not None:
            messages.append("Baking: watching alarms before declaring success")
    info["deploymentStatusMessages"] = messages
    return info


# Kept in the stored info for the engine and agents, not part of DeploymentInfo.
_PRIVATE_INFO = frozenset(
    {"targetOrder", "deploymentGroupId", "lambdaAppSpec", "ecsAppSpec", "ecsTarget"}
)


def lifecycle_events(target: TargetState) -> list[dict[str, Any]]:
    events = []
    for event in target.events:
        item: dict[str, Any] = {"lifecycleEventName": event.name, "status": event.status.value}
        if event.start_time is not None:
            item["startTime"] = event.start_time
        if event.end_time is not None:
            item["endTime"] = event.end_time
        if event.diagnostics:
            item["diagnostics"] = event.diagnostics
        events.append(item)
    return events


def instance_arn(region: str, name: str) -> str:
    return f"arn:aws:codedeploy:{region}:{ACCOUNT_ID}:instance/{name}"


def instance_target(deployment_id: str, target: TargetState, region: str) -> dict[str, Any]:
    return {
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": deployment_id,
            "targetId": target.target_id,
            "targetArn": instance_arn(region, target.target_id),
            "status": target.status.value,
            "lastUpdatedAt": target.last_updated,
            "lifecycleEvents": lifecycle_events(target),
            **({"instanceLabel": target.label} if target.label else {}),
        },
    }


def deployment_target(
    stored: StoredDeployment,
    target: TargetState,
    region: str,
    task_sets: list[TaskSetInfo] | None = None,
) -> dict[str, Any]:
    """The target's wire shape for its deployment's compute platform (``task_sets``:
    an ECS service's task sets as the backend reports them now)."""
    platform = stored.info.get("computePlatform")
    if platform == "Lambda":
        return lambda_target(stored, target, region)
    if platform == "ECS":
        return ecs_target(stored, target, region, task_sets or [])
    return instance_target(stored.state.deployment_id, target, region)


def ecs_target(
    stored: StoredDeployment, target: TargetState, region: str, task_sets: list[TaskSetInfo]
) -> dict[str, Any]:
    cluster, _, service = target.target_id.partition(":")
    return {
        "deploymentTargetType": "ECSTarget",
        "ecsTarget": {
            "deploymentId": stored.state.deployment_id,
            "targetId": target.target_id,
            "targetArn": f"arn:aws:ecs:{region}:{ACCOUNT_ID}:service/{cluster}/{service}",
            "status": target.status.value,
            "lastUpdatedAt": target.last_updated,
            "lifecycleEvents": lifecycle_events(target),
            "taskSetsInfo": [task_set.to_wire() for task_set in task_sets],
        },
    }


def lambda_target(stored: StoredDeployment, target: TargetState, region: str) -> dict[str, Any]:
    """A function alias; its weight is the share the engine last moved to the target
    version (the router confirms each step before the next is due)."""
    spec = stored.info.get("lambdaAppSpec") or {}
    function, alias = spec.get("functionName", ""), spec.get("functionAlias", "")
    return {
        "deploymentTargetType": "LambdaTarget",
        "lambdaTarget": {
            "deploymentId": stored.state.deployment_id,
            "targetId": target.target_id,
            "targetArn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}:{alias}",
            "status": target.status.value,
            "lastUpdatedAt": target.last_updated,
            "lifecycleEvents": lifecycle_events(target),
            "lambdaFunctionInfo": {
                "functionName": function,
                "functionAlias": alias,
                "currentVersion": spec.get("currentVersion", ""),
                "targetVersion": spec.get("targetVersion", ""),
                "targetVersionWeight": float(stored.state.shift_weight),
            },
        },
    }


def instance_summary(deployment_id: str, target: TargetState) -> dict[str, Any]:
    """The deprecated InstanceSummary shape."""
    return {
        "deploymentId": deployment_id,
        "instanceId": target.target_id,
        "status": target.status.value,
        "lastUpdatedAt": target.last_updated,
        "lifecycleEvents": lifecycle_events(target),
        **({"instanceType": target.label} if target.label else {}),
    }
