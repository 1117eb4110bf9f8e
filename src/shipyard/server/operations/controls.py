"""Shipyard extensions that steer a running deployment: pause between batches,
resume, approve; and the group option that makes deployments wait for approval."""

from __future__ import annotations

from shipyard.engine import messages
from shipyard.errors import ApiError
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations.deployments import _deployment_id, load_deployment
from shipyard.store import resources

# Kept in the deployment group's document; read by engine.launch.
OPTIONS_KEY = "shipyardOptions"


def _steer(call: Call, event: messages.Input) -> Json:
    deployment_id = _deployment_id(call.body)
    stored = load_deployment(call, deployment_id)
    if stored.state.status in TERMINAL_DEPLOYMENT_STATUSES:
        raise ApiError(
            "DeploymentAlreadyCompletedException",
            f"Deployment {deployment_id} is already {stored.state.status.value}",
        )
    status = call.services.runner.apply(deployment_id, event)
    return {"status": status.value if status else ""}


def pause(call: Call) -> Json:
    return _steer(call, messages.Paused())


def resume(call: Call) -> Json:
    return _steer(call, messages.Resumed())


def approve(call: Call) -> Json:
    return _steer(call, messages.Approved())


def set_group_options(call: Call) -> Json:
    """ShipyardSetDeploymentGroupOptions {applicationName, deploymentGroupName,
    requireApproval}"""
    body = call.body
    app = validate.name(
        validate.required(body, "applicationName", "ApplicationNameRequiredException"),
        "InvalidApplicationNameException",
        "applicationName",
    )
    name = validate.name(
        validate.required(body, "deploymentGroupName", "DeploymentGroupNameRequiredException"),
        "InvalidDeploymentGroupNameException",
        "deploymentGroupName",
    )
    require = validate.boolean(
        body.get("requireApproval", False), "InvalidInputException", "requireApproval"
    )
    with call.services.db.tx() as conn:
        if resources.get_deployment_group(conn, app, name) is None:
            raise ApiError(
                "DeploymentGroupDoesNotExistException", f"No deployment group {name} in {app}"
            )
        resources.update_deployment_group_doc(
            conn, app, name, {OPTIONS_KEY: {"requireApproval": require}}
        )
    return {}


OPERATIONS: dict[str, Handler] = {
    "ShipyardPauseDeployment": pause,
    "ShipyardResumeDeployment": resume,
    "ShipyardApproveDeployment": approve,
    "ShipyardSetDeploymentGroupOptions": set_group_options,
}
