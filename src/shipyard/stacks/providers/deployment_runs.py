"""A CodeDeploy deployment a provider starts and waits out (the Lambda alias's update
policy, the blue/green hook's green task set): started from AppSpecContent, polled
until it ends, stopped when a rollback interrupts it."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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


def succeeded(found: dict[str, Any], codedeploy: Any = None) -> None:
    """Refuse (ProviderError, CodeDeploy's reason) unless the deployment succeeded;
    with ``codedeploy``, the reason names the lifecycle event that failed."""
    if found["status"] == "Succeeded":
        return
    error = found.get("errorInformation") or {}
    reason = error.get("message", "no reason given")
    event = failed_event(codedeploy, found["deploymentId"]) if codedeploy is not None else ""
    raise ProviderError(
        f"CodeDeploy deployment {found['deploymentId']} {found['status'].lower()}: "
        f"{reason}{f' ({event})' if event else ''}"
    )


def failed_event(codedeploy: Any, deployment_id: str) -> str:
    """'<event> failed: <its message>' for the first failed lifecycle event of the
    deployment's targets ('' when none failed or they cannot be read)."""
    try:
        ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
        for target_id in ids:
            target = codedeploy.get_deployment_target(
                deploymentId=deployment_id, targetId=target_id
            )["deploymentTarget"]
            detail: dict[str, Any] = next(
                (v for k, v in target.items() if k.endswith("Target")), {}
            )
            for event in detail.get("lifecycleEvents") or []:
                if event.get("status") == "Failed":
                    message = (event.get("diagnostics") or {}).get("message", "")
                    return f"{event['lifecycleEventName']} failed: {message}".rstrip(": ")
    except (ClientError, BotoCoreError):
        return ""
    return ""


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
