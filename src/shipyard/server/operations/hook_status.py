"""PutLifecycleEventHookExecutionStatus: a hook function's report, for the platforms
whose hooks are functions (Lambda, ECS; reference aws-services.md §3.2)."""

from __future__ import annotations

from shipyard.engine.messages import HookReported
from shipyard.engine.state import StoredDeployment
from shipyard.errors import ApiError
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, LifecycleEventStatus
from shipyard.server.context import Call, Json
from shipyard.store import hook_executions

STATUSES = ("Succeeded", "Failed")
HOOKED_PLATFORMS = ("Lambda", "ECS")


def put_hook_status(call: Call, deployment_id: str, stored: StoredDeployment) -> Json:
    """A hook function's report; ``stored`` is the deployment it names."""
    body = call.body
    if stored.info.get("computePlatform") not in HOOKED_PLATFORMS:
        raise ApiError(
            "UnsupportedActionForDeploymentTypeException",
            "Lifecycle hook execution status is reported only for Lambda and ECS deployments",
        )
    execution_id = body.get("lifecycleEventHookExecutionId")
    if not isinstance(execution_id, str) or not execution_id:
        raise ApiError(
            "InvalidLifecycleEventHookExecutionIdException",
            "lifecycleEventHookExecutionId is required: the id the hook function was invoked with",
        )
    status = body.get("status")
    if status not in STATUSES:
        raise ApiError(
            "InvalidLifecycleEventHookExecutionStatusException",
            f"status must be Succeeded or Failed; got {status!r}",
        )
    with call.services.db.tx() as conn:
        execution = hook_executions.get(conn, execution_id)
        if execution is None or execution.deployment_id != deployment_id:
            raise ApiError(
                "InvalidLifecycleEventHookExecutionIdException",
                f"{execution_id[:128]!r} is not a hook execution of {deployment_id}",
            )
        if not _still_waiting(stored, execution) or not hook_executions.report(
            conn, execution_id, status
        ):
            raise ApiError(
                "LifecycleEventAlreadyCompletedException",
                f"The {execution.event} hook of {deployment_id} has already completed",
            )
    report = HookReported(execution.target_id, execution.event, status == "Succeeded")
    call.services.runner.apply(deployment_id, report)
    return {"lifecycleEventHookExecutionId": execution_id}


def _still_waiting(stored: StoredDeployment, execution: hook_executions.HookExecution) -> bool:
    """Whether the event is still waiting for this report (not timed out or stopped)."""
    if stored.state.status in TERMINAL_DEPLOYMENT_STATUSES:
        return False
    target = stored.state.targets.get(execution.target_id)
    current = target.current() if target is not None else None
    return (
        current is not None
        and current.name == execution.event
        and current.status == LifecycleEventStatus.IN_PROGRESS
    )
