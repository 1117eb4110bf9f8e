"""What the API does for Lambda deployments: the appspec checked against the function
backend at CreateDeployment (nothing is stored when it does not match), and
PutLifecycleEventHookExecutionStatus, a hook function's report."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.bundlestore.urls import BundleStoreError, read_bundle
from shipyard.engine.launch import PlatformTargets
from shipyard.engine.messages import HookReported
from shipyard.engine.state import StoredDeployment
from shipyard.errors import ApiError, MissingRevision
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, LifecycleEventStatus
from shipyard.platforms.lambda_ import LambdaPlatform
from shipyard.platforms.lambda_appspec import MAX_APPSPEC_BYTES
from shipyard.platforms.lambda_backend import LambdaBackendError
from shipyard.platforms.lambda_steps import LambdaSteps
from shipyard.server.context import Call, Json
from shipyard.store import hook_executions

STATUSES = ("Succeeded", "Failed")


def lambda_steps(call: Call) -> LambdaSteps:
    steps = call.services.runner.steps.get("Lambda")
    if not isinstance(steps, LambdaSteps):
        raise ApiError("InvalidComputePlatformException", "This server runs no Lambda deployments")
    return steps


async def targets(
    call: Call, platform: LambdaPlatform, revision: dict[str, Any]
) -> PlatformTargets:
    """The deployment's target (the alias), once the backend matches the appspec."""

    def read(loc: dict[str, Any]) -> str | None:
        try:
            data = read_bundle(call.services, loc, MAX_APPSPEC_BYTES)
        except BundleStoreError as exc:
            raise MissingRevision(f"The appspec could not be read: {exc}") from None
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise ApiError("InvalidRevisionException", "The appspec is not UTF-8 text") from None

    spec = await asyncio.to_thread(platform.appspec, revision, read)
    steps = lambda_steps(call)
    try:
        aliases = await asyncio.to_thread(steps.aliases)
        await asyncio.to_thread(aliases.check, spec)
    except LambdaBackendError as exc:
        raise ApiError("InvalidRevisionException", f"The function backend: {exc}") from None
    return platform.targets(spec)


def put_hook_status(call: Call, deployment_id: str, stored: StoredDeployment) -> Json:
    """A hook function's report; ``stored`` is the deployment it names."""
    body = call.body
    if stored.info.get("computePlatform") != "Lambda":
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
