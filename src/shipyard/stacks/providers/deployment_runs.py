"""A CodeDeploy deployment a provider starts and waits out (the Lambda alias's update
policy, the blue/green hook's green task set): started from AppSpecContent, polled
until it ends, stopped when a rollback interrupts it."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from shipyard.stacks.providers.clients import calling
from shipyard.stacks.providers.protocol import ProviderError

ENDED = ("Succeeded", "Failed", "Stopped")


def start(codedeploy: Any, application: str, group: str, content: str, description: str) -> str:
    """CreateDeployment of ``content``; its id."""
    started = calling(
        "CreateDeployment",
        lambda: codedeploy.create_deployment(
            applicationName=application,
            deploymentGroupName=group,
            revision={
                "revisionType": "AppSpecContent",
                "appSpecContent": {
                    "content": content,
                    "sha256": hashlib.sha256(content.encode()).hexdigest(),
                },
            },
            description=description,
        ),
    )
    return str(started["deploymentId"])


def info(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = calling(
        "GetDeployment", lambda: codedeploy.get_deployment(deploymentId=deployment_id)
    )["deploymentInfo"]
    return found


def wait(codedeploy: Any, deployment_id: str, poll_seconds: float) -> dict[str, Any]:
    """The deployment's info once it has ended."""
    while True:
        found = info(codedeploy, deployment_id)
        if found["status"] in ENDED:
            return found
        time.sleep(poll_seconds)


def succeeded(found: dict[str, Any]) -> None:
    """Refuse (ProviderError, CodeDeploy's reason) unless the deployment succeeded."""
    if found["status"] != "Succeeded":
        error = found.get("errorInformation") or {}
        raise ProviderError(
            f"CodeDeploy deployment {found['deploymentId']} {found['status'].lower()}: "
            f"{error.get('message', 'no reason given')}"
        )


def stop(codedeploy: Any, deployment_id: str, poll_seconds: float, rollback: bool) -> bool:
    """End a deployment still running (waiting until it has); whether it was."""
    if info(codedeploy, deployment_id)["status"] in ENDED:
        return False
    calling(
        "StopDeployment",
        lambda: codedeploy.stop_deployment(
            deploymentId=deployment_id, autoRollbackEnabled=rollback
        ),
    )
    wait(codedeploy, deployment_id, poll_seconds)
    return True
