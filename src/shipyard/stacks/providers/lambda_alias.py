"""AWS::Lambda::Alias; with a ``CodeDeployLambdaAliasUpdate`` update policy, a change of
its version is a CodeDeploy deployment in the policy's group (the traffic shifts by the
group's config, with its hooks), not an UpdateAlias.

The deployment's id is noted as the resource's progress before it is waited for, so a
rollback (even after a restart) stops it first and then puts the alias back directly.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import Current, Outcome, ProviderError, Request

POLICY = "CodeDeployLambdaAliasUpdate"
ENDED = ("Succeeded", "Failed", "Stopped")
POLL_SECONDS = 0.5
GONE = ("ResourceNotFoundException",)


class AliasProvider:
    def __init__(self, clients: Clients, poll_seconds: float = POLL_SECONDS) -> None:
        self.clients = clients
        self.poll_seconds = poll_seconds

    def create(self, request: Request) -> Outcome:
        props = request.properties
        lam = self.clients.client("lambda")
        arguments = {k: props[k] for k in ("Description", "RoutingConfig") if k in props}
        created = calling(
            f"CreateAlias {props.get('FunctionName')}:{props.get('Name')}",
            lambda: lam.create_alias(
                FunctionName=props["FunctionName"],
                Name=props["Name"],
                FunctionVersion=str(props["FunctionVersion"]),
                **arguments,
            ),
        )
        return Outcome(created["AliasArn"], {"AliasArn": created["AliasArn"]})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        props, old = request.properties, current.properties
        policy = request.update_policy.get(POLICY)
        if rolling_back:
            self._stop(request.progress.get("deploymentId"), request)
        elif policy and str(props["FunctionVersion"]) != str(old["FunctionVersion"]):
            self._deploy(request, str(old["FunctionVersion"]), policy)
            return Outcome(current.physical_id, current.attributes)
        lam = self.clients.client("lambda")
        calling(
            f"UpdateAlias {props['FunctionName']}:{props['Name']}",
            lambda: lam.update_alias(
                FunctionName=props["FunctionName"],
                Name=props["Name"],
                FunctionVersion=str(props["FunctionVersion"]),
                Description=props.get("Description", ""),
                RoutingConfig=props.get("RoutingConfig", {"AdditionalVersionWeights": {}}),
            ),
        )
        return Outcome(current.physical_id, current.attributes)

    def delete(self, current: Current) -> None:
        props = current.properties
        lam = self.clients.client("lambda")
        calling(
            f"DeleteAlias {current.physical_id}",
            lambda: lam.delete_alias(FunctionName=props["FunctionName"], Name=props["Name"]),
            GONE,
        )

    def _deploy(self, request: Request, current: str, policy: dict[str, Any]) -> None:
        props = request.properties
        target = str(props["FunctionVersion"])
        content = appspec(props["FunctionName"], props["Name"], current, target, policy)
        codedeploy = self.clients.client("codedeploy")
        started = calling(
            "CreateDeployment",
            lambda: codedeploy.create_deployment(
                applicationName=policy["ApplicationName"],
                deploymentGroupName=policy["DeploymentGroupName"],
                revision={
                    "revisionType": "AppSpecContent",
                    "appSpecContent": {
                        "content": content,
                        "sha256": hashlib.sha256(content.encode()).hexdigest(),
                    },
                },
                description=f"Stack update of {request.logical_id}: version {current} to {target}",
            ),
        )
        deployment_id = started["deploymentId"]
        request.note(
            f"CodeDeploy deployment {deployment_id} shifts {props['Name']} from version "
            f"{current} to {target}",
            {"deploymentId": deployment_id},
        )
        info = self._wait(codedeploy, deployment_id)
        if info["status"] != "Succeeded":
            error = info.get("errorInformation") or {}
            raise ProviderError(
                f"CodeDeploy deployment {deployment_id} {info['status'].lower()}: "
                f"{error.get('message', 'no reason given')}"
            )

    def _wait(self, codedeploy: Any, deployment_id: str) -> dict[str, Any]:
        while True:
            info: dict[str, Any] = calling(
                "GetDeployment", lambda: codedeploy.get_deployment(deploymentId=deployment_id)
            )["deploymentInfo"]
            if info["status"] in ENDED:
                return info
            time.sleep(self.poll_seconds)

    def _stop(self, deployment_id: str | None, request: Request) -> None:
        """End a deployment a rollback interrupts; the alias is then put back directly."""
        if not deployment_id:
            return
        codedeploy = self.clients.client("codedeploy")
        info = calling(
            "GetDeployment", lambda: codedeploy.get_deployment(deploymentId=deployment_id)
        )["deploymentInfo"]
        if info["status"] not in ENDED:
            request.note(f"Stopping CodeDeploy deployment {deployment_id}", {})
            calling(
                "StopDeployment",
                lambda: codedeploy.stop_deployment(
                    deploymentId=deployment_id, autoRollbackEnabled=False
                ),
            )
            self._wait(codedeploy, deployment_id)


def appspec(function: str, alias: str, current: str, target: str, policy: dict[str, Any]) -> str:
    """The AppSpecContent of the deployment (JSON is YAML too)."""
    hooks = [
        {event: policy[key]}
        for event, key in (
            ("BeforeAllowTraffic", "BeforeAllowTrafficHook"),
            ("AfterAllowTraffic", "AfterAllowTrafficHook"),
        )
        if policy.get(key)
    ]
    document: dict[str, Any] = {
        "version": 0.0,
        "Resources": [
            {
                "alias": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {
                        "Name": function,
                        "Alias": alias,
                        "CurrentVersion": current,
                        "TargetVersion": target,
                    },
                }
            }
        ],
    }
    if hooks:
        document["Hooks"] = hooks
    return json.dumps(document)
