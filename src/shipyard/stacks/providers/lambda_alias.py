"""AWS::Lambda::Alias; with a ``CodeDeployLambdaAliasUpdate`` update policy, a change of
its version is a CodeDeploy deployment in the policy's group (the traffic shifts by the
group's config, with its hooks), not an UpdateAlias.

The deployment's id is noted as the resource's progress before it is waited for, so a
rollback (even after a restart) stops it first and then puts the alias back directly.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.stacks.providers import deployment_runs as runs
from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import Current, Outcome, Request

POLICY = "CodeDeployLambdaAliasUpdate"
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
        deployment_id = runs.start(
            codedeploy,
            policy["ApplicationName"],
            policy["DeploymentGroupName"],
            content,
            f"Stack update of {request.logical_id}: version {current} to {target}",
        )
        request.note(
            f"CodeDeploy deployment {deployment_id} shifts {props['Name']} from version "
            f"{current} to {target}",
            {"deploymentId": deployment_id},
        )
        runs.succeeded(runs.wait(codedeploy, deployment_id, self.poll_seconds))

    def _stop(self, deployment_id: str | None, request: Request) -> None:
        """End a deployment a rollback interrupts; the alias is then put back directly."""
        if not deployment_id:
            return
        codedeploy = self.clients.client("codedeploy")
        if runs.stop(codedeploy, deployment_id, self.poll_seconds, rollback=False):
            request.note(f"Stopped CodeDeploy deployment {deployment_id}", {})


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
