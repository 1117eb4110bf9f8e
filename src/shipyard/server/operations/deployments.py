"""CreateDeployment, GetDeployment, BatchGetDeployments, ListDeployments,
StopDeployment, ContinueDeployment, SkipWaitTimeForInstanceTermination and
PutLifecycleEventHookExecutionStatus."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.bundlestore.urls import bundle_in_store
from shipyard.engine import launch, messages
from shipyard.errors import ApiError, DeploymentGroupBusy
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, DeploymentStatus, FileExistsBehavior
from shipyard.platforms import Platform, platform_for_group
from shipyard.platforms.ecs_ import EcsPlatform
from shipyard.platforms.lambda_ import LambdaPlatform
from shipyard.server import green_fleet, validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import (
    ecs_deployments,
    group_members,
    hook_status,
    lambda_deployments,
)
from shipyard.server.operations.render import deployment_info
from shipyard.store import alarms as alarm_store
from shipyard.store import deployments as store
from shipyard.store import resources
from shipyard.store.predefined_configs import DEFAULT_CONFIG_FOR_PLATFORM

DEFAULT_CONFIG = "CodeDeployDefault.OneAtATime"
MAX_DESCRIPTION = 256
DEPLOYMENT_ID_RE = r"d-[A-Z0-9]{9}"


def _app_and_group(conn: Connection, body: Json) -> tuple[dict[str, Any], dict[str, Any]]:
    app_name = validate.name(
        validate.required(body, "applicationName", "ApplicationNameRequiredException"),
        "InvalidApplicationNameException",
        "applicationName",
    )
    app = resources.get_application(conn, app_name)
    if app is None:
        raise ApiError("ApplicationDoesNotExistException", f"No application named {app_name}")
    group_name = validate.name(
        validate.required(body, "deploymentGroupName", "DeploymentGroupNameRequiredException"),
        "InvalidDeploymentGroupNameException",
        "deploymentGroupName",
    )
    group = resources.get_deployment_group(conn, app_name, group_name)
    if group is None:
        raise ApiError(
            "DeploymentGroupDoesNotExistException",
            f"No deployment group {group_name} in application {app_name}",
        )
    return app, group


def _config(
    conn: Connection, body: Json, group: dict[str, Any], platform: Platform
) -> dict[str, Any]:
    default = DEFAULT_CONFIG_FOR_PLATFORM.get(platform.name, DEFAULT_CONFIG)
    name = body.get("deploymentConfigName") or group.get("deploymentConfigName") or default
    validate.name(name, "InvalidDeploymentConfigNameException", "deploymentConfigName")
    config = resources.get_deployment_config(conn, name)
    if config is None:
        raise ApiError("DeploymentConfigDoesNotExistException", f"No deployment config {name}")
    platform.check_config(config)
    return config


def _options(body: Json) -> dict[str, Any]:
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ApiError("InvalidInputException", "description must be a string")
    if len(description) > MAX_DESCRIPTION:
        raise ApiError(
            "DescriptionTooLongException", f"description is longer than {MAX_DESCRIPTION}"
        )
    behavior = validate.enum(
        body.get("fileExistsBehavior", FileExistsBehavior.DISALLOW.value),
        [b.value for b in FileExistsBehavior],
        "InvalidFileExistsBehaviorException",
        "fileExistsBehavior",
    )
    ignore = validate.boolean(
        body.get("ignoreApplicationStopFailures", False),
        "InvalidIgnoreApplicationStopFailuresValueException",
        "ignoreApplicationStopFailures",
    )
    outdated_only = validate.boolean(
        body.get("updateOutdatedInstancesOnly", False),
        "InvalidUpdateOutdatedInstancesOnlyValueException",
        "updateOutdatedInstancesOnly",
    )
    mode = validate.enum(
        body.get("deploymentMode", "STANDARD"),
        ["STANDARD", "RESTART"],
        "InvalidInputException",
        "deploymentMode",
    )
    return {
        "description": description,
        "fileExistsBehavior": behavior,
        "ignoreApplicationStopFailures": ignore,
        "updateOutdatedInstancesOnly": outdated_only,
        "deploymentMode": mode,
    }


def _revision(call: Call, body: Json, group: dict[str, Any], mode: str, platform: Platform) -> Json:
    if mode == "RESTART":
        if body.get("revision"):
            raise ApiError("InvalidInputException", "deploymentMode RESTART takes no revision")
        last = group.get("targetRevision")
        if not last:
            raise ApiError(
                "RevisionRequiredException",
                "deploymentMode RESTART needs a previous successful deployment in the group",
            )
        return dict(last)
    revision = body.get("revision")
    if not revision:
        raise ApiError("RevisionRequiredException", "revision is required")
    return platform.check_revision(revision, lambda loc: bundle_in_store(call.services, loc))


def _check_platform(call: Call, conn: Connection, group: dict[str, Any]) -> Platform:
    """The group's platform, once it accepts what the group asks of this server."""
    platform = platform_for_group(group)
    alarms = (group.get("alarmConfiguration") or {}).get("alarms") or []
    defined = alarm_store.get_alarms(conn, [a["name"] for a in alarms])
    platform.check_deployment(
        group,
        call.body.get("targetInstances"),
        has_router=call.services.runner.router is not None,
        defined_alarms=set(defined),
    )
    return platform


def _override_alarms(value: Any) -> dict[str, Any] | None:
    return None if value is None else group_members.alarm_configuration(value)


def _provisions(group: dict[str, Any]) -> bool:
    style = group.get("deploymentStyle") or {}
    option = (group.get("blueGreenDeploymentConfiguration") or {}).get(
        "greenFleetProvisioningOption"
    ) or {}
    return bool(
        style.get("deploymentType") == "BLUE_GREEN"
        and option.get("action") == "COPY_AUTO_SCALING_GROUP"
    )


async def create_deployment(call: Call) -> Json:
    body = call.body
    options = _options(body)
    if options["deploymentMode"] == "RESTART" and options["updateOutdatedInstancesOnly"]:
        raise ApiError(
            "InvalidUpdateOutdatedInstancesOnlyValueException",
            "updateOutdatedInstancesOnly must not be true with deploymentMode RESTART",
        )
    with call.services.db.tx() as conn:
        app, group = _app_and_group(conn, body)
        platform = _check_platform(call, conn, group)
        config = _config(conn, body, group, platform)
        revision = _revision(call, body, group, options["deploymentMode"], platform)
        active = store.active_for_group(conn, app["applicationName"], group["deploymentGroupName"])
    if active is not None:  # checked again atomically when the deployment is stored
        raise DeploymentGroupBusy(group["deploymentGroupName"], active)
    own_targets = None
    if isinstance(platform, LambdaPlatform):
        own_targets = await lambda_deployments.targets(call, platform, revision)
    elif isinstance(platform, EcsPlatform):
        own_targets = await ecs_deployments.targets(call, platform, revision, group)
    target_instances = body.get("targetInstances")
    if _provisions(group):
        target_instances = await green_fleet.provision(
            call, call.services.runner.provisioner, app["applicationName"], group
        )
    request = launch.LaunchRequest(
        app_name=app["applicationName"],
        group=group,
        config=config,
        revision=revision,
        description=options["description"],
        file_exists_behavior=options["fileExistsBehavior"],
        ignore_application_stop_failures=options["ignoreApplicationStopFailures"],
        update_outdated_only=options["updateOutdatedInstancesOnly"],
        deployment_mode=options["deploymentMode"],
        auto_rollback=body.get("autoRollbackConfiguration"),
        target_instances=target_instances,
        alarm_configuration=_override_alarms(body.get("overrideAlarmConfiguration")),
        platform_targets=own_targets,
    )
    deployment_id = call.services.runner.create(request)
    return {"deploymentId": deployment_id}


def _deployment_id(body: Json) -> str:
    value = validate.required(body, "deploymentId", "DeploymentIdRequiredException")
    if not isinstance(value, str) or not value.startswith("d-") or len(value) > 64:
        raise ApiError("InvalidDeploymentIdException", f"Not a deployment id: {value!r}")
    return value


def load_deployment(call: Call, deployment_id: str) -> store.StoredDeployment:
    """The deployment to read (never to change: it may be the runner's cached state)."""
    stored = call.services.runner.current(deployment_id)
    if stored is None:
        raise ApiError("DeploymentDoesNotExistException", f"No deployment {deployment_id}")
    return stored


def get_deployment(call: Call) -> Json:
    return {"deploymentInfo": deployment_info(load_deployment(call, _deployment_id(call.body)))}


def batch_get_deployments(call: Call) -> Json:
    ids = validate.batch(
        validate.required(call.body, "deploymentIds", "DeploymentIdRequiredException"),
        25,
        "InvalidDeploymentIdException",
        "BatchLimitExceededException",
        "deploymentIds",
    )
    found = []
    with call.services.db.tx() as conn:
        for deployment_id in ids:
            stored = store.load(conn, deployment_id)
            if stored is not None:
                found.append(deployment_info(stored))
    return {"deploymentsInfo": found}


def list_deployments(call: Call) -> Json:
    body = call.body
    app_name = body.get("applicationName")
    group_name = body.get("deploymentGroupName")
    with call.services.db.tx() as conn:
        if group_name is not None and app_name is None:
            raise ApiError(
                "ApplicationNameRequiredException", "deploymentGroupName needs applicationName"
            )
        if app_name is not None:
            if group_name is None:
                raise ApiError(
                    "DeploymentGroupNameRequiredException",
                    "applicationName needs deploymentGroupName",
                )
            _app_and_group(conn, body)
        statuses = body.get("includeOnlyStatuses") or []
        for status in statuses:
            validate.enum(
                status,
                [s.value for s in DeploymentStatus],
                "InvalidDeploymentStatusException",
                "includeOnlyStatuses",
            )
        time_range = body.get("createTimeRange") or {}
        start, end = time_range.get("start"), time_range.get("end")
        if start is not None and end is not None and start > end:
            raise ApiError("InvalidTimeRangeException", "createTimeRange start is after end")
        ids = store.list_ids(
            conn,
            app=app_name,
            group=group_name,
            statuses=statuses,
            external_id=body.get("externalId"),
            start=start,
            end=end,
        )
    page, token = validate.paginate(ids, body.get("nextToken"))
    result: Json = {"deployments": page}
    if token:
        result["nextToken"] = token
    return result


def stop_deployment(call: Call) -> Json:
    deployment_id = _deployment_id(call.body)
    stored = load_deployment(call, deployment_id)
    if stored.state.status in TERMINAL_DEPLOYMENT_STATUSES:
        raise ApiError(
            "DeploymentAlreadyCompletedException",
            f"Deployment {deployment_id} is already {stored.state.status.value}",
        )
    rollback = call.body.get("autoRollbackEnabled")
    if rollback is not None:
        validate.boolean(rollback, "InvalidInputException", "autoRollbackEnabled")
    status = call.services.runner.apply(deployment_id, messages.StopRequested(rollback=rollback))
    if status == DeploymentStatus.STOPPED:
        return {"status": "Succeeded", "statusMessage": "Deployment stopped"}
    return {
        "status": "Pending",
        "statusMessage": "Stopping: waiting for lifecycle events in progress to finish",
    }


def continue_deployment(call: Call) -> Json:
    deployment_id = _deployment_id(call.body)
    wait_type = call.body.get("deploymentWaitType", "READY_WAIT")
    validate.enum(
        wait_type,
        ["READY_WAIT", "TERMINATION_WAIT"],
        "InvalidDeploymentWaitTypeException",
        "deploymentWaitType",
    )
    return _continue(call, deployment_id, wait_type)


def _continue(call: Call, deployment_id: str, wait_type: str) -> Json:
    stored = load_deployment(call, deployment_id)
    state = stored.state
    if state.status in TERMINAL_DEPLOYMENT_STATUSES:
        raise ApiError("DeploymentAlreadyCompletedException", f"{deployment_id} has completed")
    if state.phase is None and state.ready_wait is None and state.terminate_wait is None:
        raise ApiError(
            "UnsupportedActionForDeploymentTypeException",
            f"{deployment_id} is an in-place deployment and never waits",
        )
    if wait_type == "READY_WAIT" and state.status != DeploymentStatus.READY:
        raise ApiError(
            "DeploymentIsNotInReadyStateException", f"{deployment_id} is not waiting in Ready"
        )
    if wait_type == "TERMINATION_WAIT" and state.phase != "terminate":
        raise ApiError(
            "DeploymentIsNotInReadyStateException",
            f"{deployment_id} is not waiting to terminate its original instances",
        )
    call.services.runner.apply(deployment_id, messages.Continued(wait_type))
    return {}


def skip_wait_time(call: Call) -> Json:
    deployment_id = _deployment_id(call.body)
    return _continue(call, deployment_id, "TERMINATION_WAIT")


def put_hook_status(call: Call) -> Json:
    deployment_id = _deployment_id(call.body)
    return hook_status.put_hook_status(call, deployment_id, load_deployment(call, deployment_id))


OPERATIONS: dict[str, Handler] = {
    "CreateDeployment": create_deployment,
    "GetDeployment": get_deployment,
    "BatchGetDeployments": batch_get_deployments,
    "ListDeployments": list_deployments,
    "StopDeployment": stop_deployment,
    "ContinueDeployment": continue_deployment,
    "SkipWaitTimeForInstanceTermination": skip_wait_time,
    "PutLifecycleEventHookExecutionStatus": put_hook_status,
}
