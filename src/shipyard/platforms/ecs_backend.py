"""Where an ECS deployment's service and load balancer live, reached only through boto3
``ecs`` and ``elbv2`` clients: the server's own container service (the default), AWS, or
any other implementation of the two APIs (the tests use moto's server).

``EcsServices`` is everything a deployment does there (reference aws-services.md §4.6):
check the group's service, target groups and listeners and the appspec's task
definition; create the replacement task set (externalId = the deployment id) on the
target group not serving production and wait until it is steady; point the test
listener at it; move the production listener's weights; put both back and delete the
replacement; make it primary and delete the original. Its calls block (run them in a
worker thread) and raise ``EcsBackendError`` with a message a person can act on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shipyard.config import ConfigError, ServerConfig
from shipyard.errors import InvalidRevision, SettingKind, UnsupportedSetting
from shipyard.platforms.ecs_appspec import EcsAppSpec
from shipyard.platforms.ecs_listeners import (
    FULL,
    EcsBackendError,
    Routes,
    call_api,
    forward_weights,
)
from shipyard.platforms.ecs_target import EcsTarget, TaskSetInfo
from shipyard.platforms.lambda_backend import (
    BACKENDS,
    CLIENT_CONFIG,
    Credentials,
    error_code,
    error_text,
)

CODE_DEPLOY = "CODE_DEPLOY"
EXTERNAL = "EXTERNAL"
STEADY = "STEADY_STATE"


def build_clients(config: ServerConfig, embedded_key: Credentials) -> tuple[Any, Any]:
    """The ``ecs`` and ``elbv2`` clients the server's settings name (``containers_backend``)."""
    if config.containers_backend not in BACKENDS:
        raise ConfigError(
            f"containers_backend must be one of {', '.join(BACKENDS)}; "
            f"got {config.containers_backend!r}"
        )
    options: dict[str, Any] = {"config": CLIENT_CONFIG}
    if config.containers_backend == "aws":
        # Region and keys from the AWS chain (environment, profile, instance role).
        options.update(
            region_name=config.containers_region or None,
            endpoint_url=config.containers_endpoint or None,
        )
    else:
        key_id, secret = embedded_key()
        options.update(
            region_name=config.region,
            endpoint_url=config.containers_endpoint or config.url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
    return boto3.client("ecs", **options), boto3.client("elbv2", **options)


class EcsServices:
    def __init__(self, ecs: Any, elbv2: Any, poll_seconds: float = 1.0) -> None:
        self.ecs = ecs
        self.routes = Routes(elbv2)
        self.poll_seconds = poll_seconds

    # ---- checks (CreateDeploymentGroup, CreateDeployment) ---------------------------

    def check_group(self, target: EcsTarget, external: bool = False) -> None:
        """The group's service is a CODE_DEPLOY service on an existing cluster, its
        two target groups exist and its listeners forward to one of them. ``external``:
        a stack's blue/green hook deploys an EXTERNAL service (CloudFormation's
        deployments do), so that controller is accepted too."""
        service = self._service(target)
        controller = (service.get("deploymentController") or {}).get("type", "ECS")
        if controller != CODE_DEPLOY and not (external and controller == EXTERNAL):
            raise UnsupportedSetting(
                SettingKind.ECS_SERVICE,
                f"ECS service {target.target_id} has deploymentController {controller}; "
                f"CodeDeploy deploys only services created with {CODE_DEPLOY}",
            )
        arns = self.routes.target_group_arns(target)
        for listener in self.routes.listeners(target.prod_listeners + target.test_listeners):
            forwarded = set(forward_weights(listener))
            if not forwarded & set(arns.values()):
                raise UnsupportedSetting(
                    SettingKind.TARGET_GROUP_PAIR,
                    f"listener {listener['ListenerArn']} does not forward to target group "
                    f"{' or '.join(target.target_groups)}",
                )

    def check_deployment(self, target: EcsTarget, spec: EcsAppSpec, external: bool = False) -> None:
        """The group's setup still holds, the appspec's container and port are in its
        task definition, and the service has one task set serving production."""
        self.check_group(target, external)
        definition = self._task_definition(spec.task_definition)
        containers = {c.get("name"): c for c in definition.get("containerDefinitions") or []}
        container = containers.get(spec.container_name)
        where = "Resources[0].Properties.LoadBalancerInfo"
        if container is None:
            raise InvalidRevision(
                f"{where}.ContainerName {spec.container_name!r} is not a container of task "
                f"definition {spec.task_definition} (it has {', '.join(sorted(containers))})"
            )
        ports = [m.get("containerPort") for m in container.get("portMappings") or []]
        if spec.container_port not in ports:
            raise InvalidRevision(
                f"{where}.ContainerPort {spec.container_port} is not a port mapping of "
                f"container {spec.container_name} (it maps {ports or 'none'})"
            )
        sets = self.task_sets(target)
        if not any(s.get("status") == "PRIMARY" for s in sets):
            raise UnsupportedSetting(
                SettingKind.ECS_SERVICE,
                f"ECS service {target.target_id} has no primary task set to replace",
            )
        if len(sets) > 1:
            raise UnsupportedSetting(
                SettingKind.ECS_SERVICE,
                f"ECS service {target.target_id} is already being deployed: it has "
                f"{len(sets)} task sets",
            )

    # ---- the deployment's calls -------------------------------------------------------

    def install(
        self,
        target: EcsTarget,
        spec: EcsAppSpec,
        deployment_id: str,
        wanted: Callable[[], bool],
        deadline: float,
    ) -> None:
        """Create the replacement task set (once) and wait until it is steady."""
        replacement = self.replacement(target, deployment_id)
        if replacement is None:
            # Both target groups in the listeners' forward actions, the free one at
            # weight 0: a load balancer health-checks only the groups it forwards to,
            # and the new tasks must be healthy there before the task set is steady.
            self._route(target.prod_listeners + target.test_listeners, target, deployment_id, 0)
            original = self.original(target, deployment_id)
            call_api(
                "CreateTaskSet",
                lambda: self.ecs.create_task_set(
                    **self._task_set_request(target, spec, deployment_id, original)
                ),
            )
        while wanted():
            replacement = self.replacement(target, deployment_id)
            if replacement is None:
                raise EcsBackendError(f"the replacement task set of {deployment_id} is gone")
            if _steady(replacement):
                return
            if time.monotonic() >= deadline:
                raise EcsBackendError(
                    f"task set {replacement.get('id')} did not reach {STEADY} in time "
                    f"({replacement.get('runningCount', 0)} of "
                    f"{replacement.get('computedDesiredCount', '?')} tasks running)"
                )
            time.sleep(self.poll_seconds)

    def route_test_traffic(self, target: EcsTarget, deployment_id: str) -> None:
        self._route(target.test_listeners, target, deployment_id, FULL)

    def set_weight(self, target: EcsTarget, deployment_id: str, weight: int) -> None:
        """``weight`` percent of production traffic to the replacement, the rest to the
        original."""
        self._route(target.prod_listeners, target, deployment_id, weight)

    def restore(self, target: EcsTarget, deployment_id: str) -> None:
        """Both routes back to the original at once, then the replacement deleted."""
        listeners = target.prod_listeners + target.test_listeners
        if self.original(target, deployment_id) is not None:
            self._route(listeners, target, deployment_id, 0)
        replacement = self.replacement(target, deployment_id)
        if replacement is not None:
            self._delete(target, replacement)

    def retire(self, target: EcsTarget, deployment_id: str) -> None:
        """The replacement becomes primary; the original task set is deleted."""
        replacement = self.replacement(target, deployment_id)
        if replacement is None:
            raise EcsBackendError(f"the replacement task set of {deployment_id} is gone")
        if replacement.get("status") != "PRIMARY":
            call_api(
                "UpdateServicePrimaryTaskSet",
                lambda: self.ecs.update_service_primary_task_set(
                    cluster=target.cluster,
                    service=target.service,
                    primaryTaskSet=replacement["taskSetArn"],
                ),
            )
        for task_set in self.task_sets(target):
            if task_set.get("taskSetArn") != replacement["taskSetArn"]:
                self._delete(target, task_set)

    def describe(self, target: EcsTarget, deployment_id: str) -> list[TaskSetInfo]:
        """The service's task sets as ecsTarget.taskSetsInfo shows them, with the
        production listener's weights in force now."""
        weights = self.routes.shares(target)
        arns = {arn: name for name, arn in self.routes.target_group_arns(target).items()}
        infos = []
        for task_set in self.task_sets(target):
            group = _target_group(task_set)
            ours = task_set.get("externalId") == deployment_id
            infos.append(
                TaskSetInfo(
                    identifier=str(task_set.get("id", "")),
                    desired=int(task_set.get("computedDesiredCount", 0)),
                    pending=int(task_set.get("pendingCount", 0)),
                    running=int(task_set.get("runningCount", 0)),
                    status=str(task_set.get("status", "")),
                    traffic_weight=float(weights.get(group or "", 0)),
                    target_group=arns.get(group or "", group or ""),
                    label="GREEN" if ours else "BLUE",
                )
            )
        return infos

    # ---- reading ----------------------------------------------------------------------

    def task_sets(self, target: EcsTarget) -> list[dict[str, Any]]:
        found = call_api(
            "DescribeTaskSets",
            lambda: self.ecs.describe_task_sets(cluster=target.cluster, service=target.service),
        )
        return [s for s in found.get("taskSets") or [] if s.get("status") != "DRAINING"]

    def replacement(self, target: EcsTarget, deployment_id: str) -> dict[str, Any] | None:
        return next(
            (s for s in self.task_sets(target) if s.get("externalId") == deployment_id), None
        )

    def original(self, target: EcsTarget, deployment_id: str) -> dict[str, Any] | None:
        """The task set serving production before this deployment (None once retired)."""
        return next(
            (
                s
                for s in self.task_sets(target)
                if s.get("status") == "PRIMARY" and s.get("externalId") != deployment_id
            ),
            None,
        )

    def _service(self, target: EcsTarget) -> dict[str, Any]:
        found = call_api(
            "DescribeServices",
            lambda: self.ecs.describe_services(cluster=target.cluster, services=[target.service]),
            missing=(SettingKind.ECS_SERVICE, "ClusterNotFoundException"),
        )
        services = [s for s in found.get("services") or [] if s.get("status") == "ACTIVE"]
        if not services:
            raise UnsupportedSetting(
                SettingKind.ECS_SERVICE,
                f"ECS service {target.service} does not exist in cluster {target.cluster}",
            )
        return dict(services[0])

    def _task_definition(self, name: str) -> dict[str, Any]:
        try:
            found = self.ecs.describe_task_definition(taskDefinition=name)
        except ClientError as exc:
            if error_code(exc) in ("ClientException", "InvalidParameterException"):
                raise InvalidRevision(
                    f"Resources[0].Properties.TaskDefinition {name} does not exist: "
                    f"{error_text(exc)}"
                ) from None
            raise EcsBackendError(f"DescribeTaskDefinition: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise EcsBackendError(f"DescribeTaskDefinition: {exc}") from None
        return dict(found["taskDefinition"])

    # ---- writing ----------------------------------------------------------------------

    def _task_set_request(
        self,
        target: EcsTarget,
        spec: EcsAppSpec,
        deployment_id: str,
        original: dict[str, Any] | None,
    ) -> dict[str, Any]:
        arns = self.routes.target_group_arns(target)
        serving = _target_group(original) if original else None
        free = [arn for arn in arns.values() if arn != serving]
        if not free:
            raise EcsBackendError(f"no target group of {target.target_groups} is free")
        request: dict[str, Any] = {
            "cluster": target.cluster,
            "service": target.service,
            "taskDefinition": spec.task_definition,
            "externalId": deployment_id,
            "loadBalancers": [
                {
                    "targetGroupArn": free[0],
                    "containerName": spec.container_name,
                    "containerPort": spec.container_port,
                }
            ],
            "scale": {"value": 100.0, "unit": "PERCENT"},
        }
        before = original or {}
        network = spec.network_configuration or before.get("networkConfiguration")
        if network:
            request["networkConfiguration"] = network
        if spec.capacity_provider_strategy:
            request["capacityProviderStrategy"] = spec.capacity_provider_strategy
        elif before.get("launchType"):
            request["launchType"] = before["launchType"]
        version = spec.platform_version or before.get("platformVersion")
        if version and request.get("launchType") == "FARGATE":
            request["platformVersion"] = version
        return request

    def _route(
        self, listeners: tuple[str, ...], target: EcsTarget, deployment_id: str, weight: int
    ) -> None:
        """Each listener's forward action: ``weight`` to the replacement's target group,
        the rest to the original's. Both stay listed, so the pair stays attached."""
        if not listeners:
            return
        original = self.original(target, deployment_id)
        replacement = self.replacement(target, deployment_id)
        arns = self.routes.target_group_arns(target)
        old = _target_group(original) if original else None
        new = _target_group(replacement) if replacement else None
        old = old or next((a for a in arns.values() if a != new), None)
        new = new or next((a for a in arns.values() if a != old), None)
        if old is None or new is None:
            raise EcsBackendError(f"cannot tell the two target groups of {target.target_id} apart")
        self.routes.forward(listeners, old, new, weight)

    def _delete(self, target: EcsTarget, task_set: dict[str, Any]) -> None:
        try:
            self.ecs.delete_task_set(
                cluster=target.cluster,
                service=target.service,
                taskSet=task_set["taskSetArn"],
                force=True,
            )
        except ClientError as exc:
            if error_code(exc) != "TaskSetNotFoundException":  # already gone: the wanted end
                raise EcsBackendError(f"DeleteTaskSet: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise EcsBackendError(f"DeleteTaskSet: {exc}") from None


def _steady(task_set: dict[str, Any]) -> bool:
    if task_set.get("stabilityStatus") != STEADY:
        return False
    desired = task_set.get("computedDesiredCount")
    running = task_set.get("runningCount")
    counted = desired is None or running is None or running >= desired
    return counted and not task_set.get("pendingCount")


def _target_group(task_set: dict[str, Any]) -> str | None:
    balancers = task_set.get("loadBalancers") or []
    return str(balancers[0]["targetGroupArn"]) if balancers else None
