"""The green deployment of a stack with the CodeDeploy blue/green hook
(``stacks/bluegreen.py`` decides when): the green task set is not created by
CreateTaskSet but by a CodeDeploy ECS deployment, in a Shipyard-managed application
and group named after the stack and the hook, so it shows in the CodeDeploy API and
the console with its hooks and traffic shifts.

``BlueGreenTaskSets`` wraps the AWS::ECS::TaskSet provider: a create whose update
policy carries the runner's deployment document runs the deployment; everything else
is the wrapped provider's. The deployment document, then the deployment's id, are
noted as the resource's progress before it is waited for: after a restart the step
waits for the same deployment again (``create`` with that progress), and a rollback
stops it first (CodeDeploy then puts traffic back on blue and deletes the green task
set) before the stack's rows are put back.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.model import ACCOUNT_ID
from shipyard.stacks.bluegreen import POLICY
from shipyard.stacks.providers import deployment_runs as runs
from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import (
    Current,
    Note,
    Outcome,
    Provider,
    ProviderError,
    Request,
)

POLL_SECONDS = 0.5
TASK_SET = "AWS::ECS::TaskSet"
# The progress key of the deployment document: what a restart resumes with.
RESUME = "blueGreenDeployment"
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]


def with_blue_green(clients: Clients, providers: dict[str, Provider]) -> dict[str, Provider]:
    """``providers`` with the task set provider (when there is one) able to deploy."""
    inner = providers.get(TASK_SET)
    if inner is not None:
        providers[TASK_SET] = BlueGreenTaskSets(inner, clients)
    return providers


class BlueGreenTaskSets:
    def __init__(
        self, inner: Provider, clients: Clients, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.inner = inner
        self.clients = clients
        self.poll_seconds = poll_seconds

    def create(self, request: Request) -> Outcome:
        doc = request.update_policy.get(POLICY) or request.progress.get(RESUME)
        if doc is None:
            return self.inner.create(request)
        return self._deploy(request, doc)

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return self.inner.update(request, current, rolling_back)

    def delete(self, current: Current) -> None:
        self.inner.delete(current)

    def abandon(self, progress: dict[str, Any], note: Note) -> None:
        """A rollback of the stack: end the deployment it interrupts (CodeDeploy puts
        traffic back on blue and deletes the green task set); one over needs nothing."""
        codedeploy = self.clients.client("codedeploy")
        doc = progress.get(RESUME) or {}
        ids = [progress["deploymentId"]] if progress.get("deploymentId") else []
        if not ids and doc:
            # Cut off between CreateDeployment and the note of its id: the group's.
            ids = calling(
                "ListDeployments",
                lambda: codedeploy.list_deployments(
                    applicationName=doc["application"],
                    deploymentGroupName=doc["group"],
                    includeOnlyStatuses=["Created", "Queued", "InProgress", "Baking", "Ready"],
                ),
            )["deployments"]
        for deployment_id in ids:
            if runs.stop(codedeploy, deployment_id, self.poll_seconds, rollback=True):
                note(f"Stopped CodeDeploy deployment {deployment_id}; traffic is back on blue", {})

    # ---- the deployment ------------------------------------------------------------

    def _deploy(self, request: Request, doc: dict[str, Any]) -> Outcome:
        codedeploy = self.clients.client("codedeploy")
        deployment_id = request.progress.get("deploymentId")
        if deployment_id:
            request.note(f"Waiting again for CodeDeploy deployment {deployment_id}", {})
        else:
            # Noted first: a restart finds the group, and so the deployment, whatever
            # moment the server was cut at.
            request.note("", {RESUME: doc})
            self._ensure_group(codedeploy, doc)
            deployment_id = runs.start(
                codedeploy,
                doc["application"],
                doc["group"],
                appspec(doc),
                f"Stack update: green task set {request.logical_id} on {doc['taskDefinition']}",
            )
            request.note(
                f"CodeDeploy deployment {deployment_id} ({doc['application']}/{doc['group']}) "
                f"shifts traffic to the green task set",
                {"deploymentId": deployment_id},
            )
        runs.succeeded(runs.wait(codedeploy, deployment_id, self.poll_seconds), codedeploy)
        green = self._green(doc, deployment_id)
        return Outcome(green, {"Id": green})

    def _ensure_group(self, codedeploy: Any, doc: dict[str, Any]) -> None:
        """The application, config and group the hook implies, as it stands now."""
        calling(
            "CreateApplication",
            lambda: codedeploy.create_application(
                applicationName=doc["application"], computePlatform="ECS"
            ),
            ("ApplicationAlreadyExistsException",),
        )
        calling(
            "CreateDeploymentConfig",
            lambda: codedeploy.create_deployment_config(
                deploymentConfigName=doc["config"],
                computePlatform="ECS",
                trafficRoutingConfig=doc["routing"],
            ),
            ("DeploymentConfigAlreadyExistsException",),
        )
        pair: dict[str, Any] = {
            "targetGroups": [{"name": name} for name in doc["targetGroups"]],
            "prodTrafficRoute": {"listenerArns": doc["prodListeners"]},
        }
        if doc["testListeners"]:
            pair["testTrafficRoute"] = {"listenerArns": doc["testListeners"]}
        settings: dict[str, Any] = {
            "serviceRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/{doc['serviceRole']}",
            "deploymentConfigName": doc["config"],
            "ecsServices": [{"clusterName": doc["cluster"], "serviceName": doc["service"]}],
            "loadBalancerInfo": {"targetGroupPairInfoList": [pair]},
            "deploymentStyle": {
                "deploymentType": "BLUE_GREEN",
                "deploymentOption": "WITH_TRAFFIC_CONTROL",
            },
            "blueGreenDeploymentConfiguration": {
                "terminateBlueInstancesOnDeploymentSuccess": {
                    "action": "TERMINATE",
                    "terminationWaitTimeInMinutes": doc["terminationWaitMinutes"],
                },
                "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            },
            "autoRollbackConfiguration": {"enabled": True, "events": ROLLBACK_EVENTS},
        }
        created = calling(
            "CreateDeploymentGroup",
            lambda: codedeploy.create_deployment_group(
                applicationName=doc["application"], deploymentGroupName=doc["group"], **settings
            ),
            ("DeploymentGroupAlreadyExistsException",),
        )
        if created is None:
            calling(
                "UpdateDeploymentGroup",
                lambda: codedeploy.update_deployment_group(
                    applicationName=doc["application"],
                    currentDeploymentGroupName=doc["group"],
                    **settings,
                ),
            )

    def _green(self, doc: dict[str, Any], deployment_id: str) -> str:
        ecs = self.clients.client("ecs")
        found = calling(
            "DescribeTaskSets",
            lambda: ecs.describe_task_sets(cluster=doc["cluster"], service=doc["service"]),
        )
        for task_set in found.get("taskSets") or []:
            if task_set.get("externalId") == deployment_id:
                return str(task_set["id"])
        raise ProviderError(f"The green task set of deployment {deployment_id} is gone")


def appspec(doc: dict[str, Any]) -> str:
    """The deployment's AppSpecContent (JSON is YAML too): the green task definition
    behind the blue task set's container and port, and the hook functions."""
    document: dict[str, Any] = {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": doc["taskDefinition"],
                        "LoadBalancerInfo": {
                            "ContainerName": doc["containerName"],
                            "ContainerPort": doc["containerPort"],
                        },
                    },
                }
            }
        ],
    }
    if doc["functions"]:
        document["Hooks"] = [{event: name} for event, name in doc["functions"].items()]
    return json.dumps(document)
