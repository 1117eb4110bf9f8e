"""Shipyard extension: manual and emergency rollback of a deployment group."""

from __future__ import annotations

from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json


def rollback(call: Call) -> Json:
    """ShipyardRollback {applicationName, deploymentGroupName, emergency?}
    → {rollbackDeploymentId?, stoppedDeploymentId?}"""
    body = call.body
    app = validate.name(
        validate.required(body, "applicationName", "ApplicationNameRequiredException"),
        "InvalidApplicationNameException",
        "applicationName",
    )
    group = validate.name(
        validate.required(body, "deploymentGroupName", "DeploymentGroupNameRequiredException"),
        "InvalidDeploymentGroupNameException",
        "deploymentGroupName",
    )
    emergency = validate.boolean(body.get("emergency", False), "InvalidInputException", "emergency")
    return call.services.runner.manual_rollback(app, group, emergency=emergency)


OPERATIONS: dict[str, Handler] = {"ShipyardRollback": rollback}
