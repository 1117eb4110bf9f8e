"""AWS::ECS::Service and AWS::ECS::TaskSet through the ``ecs`` client. Both wait, as
CloudFormation does, until their tasks are steady (ecs_waits.py) on create and update,
and until they are gone on delete, so that what depends on them finds them ready and a
cluster or target group deleted after them is free. One whose tasks keep failing fails
with ECS's reason. A service is known by its name until created (types.py), so the
rollback deletes one that failed; a task set that failed is deleted before the failure
is reported (its id was never recorded, so a rollback could not find it).

In place (CloudFormation's rules, types.py): a service's desired count, task definition,
load balancers, network and deployment configuration and the like (UpdateService, which
refuses task definition, load balancer and network changes on a service whose controller
is not ECS, in ECS's words); a task set's scale. Anything else replaces the resource.
"""

from __future__ import annotations

import contextlib
from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.ecs import GONE, api_names, where
from shipyard.stacks.providers.ecs_shapes import arguments
from shipyard.stacks.providers.ecs_waits import (
    Failures,
    Parts,
    Patience,
    service_parts,
    task_set_part,
    wait_gone,
    wait_steady,
)
from shipyard.stacks.providers.protocol import Current, Outcome, ProviderError, Request

_IN_PLACE = (
    "DesiredCount TaskDefinition CapacityProviderStrategy DeploymentConfiguration "
    "NetworkConfiguration PlacementConstraints PlatformVersion HealthCheckGracePeriodSeconds "
    "EnableExecuteCommand EnableECSManagedTags LoadBalancers PropagateTags ServiceRegistries "
    "ServiceConnectConfiguration VolumeConfigurations AvailabilityZoneRebalancing"
)
# What only the ECS controller takes through UpdateService (a new deployment).
REDEPLOYING = ("TaskDefinition", "LoadBalancers", "NetworkConfiguration")
SERVICE_UPDATE = api_names(_IN_PLACE, PlacementStrategies="placementStrategy")
SERVICE = SERVICE_UPDATE | api_names(
    "Cluster ServiceName LaunchType Role SchedulingStrategy DeploymentController Tags"
)
TASK_SET = api_names(
    "Cluster Service TaskDefinition ExternalId LoadBalancers NetworkConfiguration LaunchType "
    "PlatformVersion Scale ServiceRegistries CapacityProviderStrategy Tags"
)


class _Waiting:
    """A provider whose calls wait on ECS, as long as ``patience`` allows."""

    def __init__(self, clients: Clients, patience: Patience | None = None) -> None:
        self.clients = clients
        self.patience = patience or Patience()

    def _check_target_groups(self, what: str, props: dict[str, Any]) -> None:
        """Refuse, as ECS on AWS does, a target group no load balancer forwards to: its
        targets are never health-checked, so the tasks would never be steady."""
        arns = [
            str(lb["TargetGroupArn"])
            for lb in props.get("LoadBalancers") or []
            if isinstance(lb, dict) and lb.get("TargetGroupArn")
        ]
        if not arns:
            return
        elbv2 = self.clients.client("elbv2")
        found = calling(
            "DescribeTargetGroups", lambda: elbv2.describe_target_groups(TargetGroupArns=arns)
        )
        for group in found["TargetGroups"]:
            if not group.get("LoadBalancerArns"):
                raise ProviderError(
                    f"{what}: InvalidParameterException: The target group with targetGroupArn "
                    f"{group['TargetGroupArn']} does not have an associated load balancer."
                )


class ServiceProvider(_Waiting):
    def create(self, request: Request) -> Outcome:
        ecs = self.clients.client("ecs")
        props = request.properties
        name = str(props.get("ServiceName") or request.name)
        settings = arguments(ecs, "CreateService", request.logical_id, props, SERVICE)
        settings = {"desiredCount": 1} | settings | {"serviceName": name}
        self._check_target_groups(f"CreateService {name}", props)
        created = calling(f"CreateService {name}", lambda: ecs.create_service(**settings))[
            "service"
        ]
        arn = str(created["serviceArn"])
        request.note(f"Service {name} created; waiting for its tasks", {})
        # If it never settles, the stack's rollback deletes it by its planned name.
        self._wait_steady(ecs, props, arn, f"Service {name}")
        return Outcome(arn, {"Name": name, "ServiceArn": arn})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        ecs = self.clients.client("ecs")
        props, old = request.properties, current.properties
        arguments(ecs, "CreateService", request.logical_id, props, SERVICE)  # refuses unknowns
        changed = {k: v for k, v in props.items() if k in SERVICE_UPDATE and old.get(k) != v}
        controller = (props.get("DeploymentController") or {}).get("Type", "ECS")
        if rolling_back and controller != "ECS":
            # ECS refuses these on such a service, so the update being undone never
            # changed them: putting them "back" would only be refused again.
            changed = {k: v for k, v in changed.items() if k not in REDEPLOYING}
        if not changed:
            return Outcome(current.physical_id, current.attributes)  # tags: not applied
        settings = arguments(ecs, "UpdateService", request.logical_id, changed, SERVICE_UPDATE)
        self._check_target_groups("UpdateService", changed)
        arn = current.physical_id
        calling(
            f"UpdateService {current.attributes.get('Name', arn)}",
            lambda: ecs.update_service(**where(props), service=arn, **settings),
        )
        if not rolling_back:  # a rollback puts it back and does not wait to see it settle
            self._wait_steady(ecs, props, arn, f"Service {current.attributes.get('Name', arn)}")
        return Outcome(arn, current.attributes)

    def delete(self, current: Current) -> None:
        ecs = self.clients.client("ecs")
        cluster = where(current.properties)
        arn = current.physical_id
        calling(
            f"DeleteService {arn}",
            lambda: ecs.delete_service(**cluster, service=arn, force=True),
            GONE,
        )

        def gone() -> bool:
            found = calling(
                "DescribeServices",
                lambda: ecs.describe_services(**cluster, services=[arn]),
                GONE,
            )
            return found is None or all(s["status"] == "INACTIVE" for s in found["services"])

        wait_gone(self.patience, f"Service {arn}", gone)

    def _wait_steady(self, ecs: Any, props: dict[str, Any], arn: str, what: str) -> None:
        cluster = where(props)

        def parts() -> Parts:
            found = calling(
                "DescribeServices", lambda: ecs.describe_services(**cluster, services=[arn])
            )
            if not found["services"]:
                raise ProviderError(f"{what} is gone")
            return service_parts(found["services"][0])

        wait_steady(self.patience, what, parts, Failures(ecs, cluster, arn).start())


class TaskSetProvider(_Waiting):
    def create(self, request: Request) -> Outcome:
        ecs = self.clients.client("ecs")
        props = request.properties
        settings = arguments(ecs, "CreateTaskSet", request.logical_id, props, TASK_SET)
        self._check_target_groups("CreateTaskSet", props)
        failures = Failures(ecs, where(props), str(props.get("Service", ""))).start()
        created = calling(
            f"CreateTaskSet on {props.get('Service')}", lambda: ecs.create_task_set(**settings)
        )["taskSet"]
        task_set_id = str(created["id"])
        # Said in the stack's events, and kept as the step's progress: the id is what a
        # rollback after a restart would need to find it.
        request.note(f"Task set {task_set_id} created; waiting for its tasks", {"id": task_set_id})
        try:
            self._wait_steady(ecs, props, task_set_id, failures)
        except ProviderError:
            with contextlib.suppress(ProviderError):
                self.delete(Current(task_set_id, props, {}))
            raise
        return Outcome(task_set_id, {"Id": task_set_id})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        ecs = self.clients.client("ecs")
        props, task_set_id = request.properties, current.physical_id
        arguments(ecs, "CreateTaskSet", request.logical_id, props, TASK_SET)  # refuses unknowns
        if props.get("Scale") == current.properties.get("Scale"):
            return Outcome(task_set_id, current.attributes)  # tags: not applied
        settings = arguments(
            ecs,
            "UpdateTaskSet",
            request.logical_id,
            {"Scale": props.get("Scale")},
            {"Scale": "scale"},
        )
        failures = Failures(ecs, where(props), str(props.get("Service", ""))).start()
        calling(
            f"UpdateTaskSet {task_set_id}",
            lambda: ecs.update_task_set(
                **where(props), service=props.get("Service"), taskSet=task_set_id, **settings
            ),
        )
        if not rolling_back:
            self._wait_steady(ecs, props, task_set_id, failures)
        return Outcome(task_set_id, current.attributes)

    def delete(self, current: Current) -> None:
        ecs = self.clients.client("ecs")
        props, task_set_id = current.properties, current.physical_id
        cluster, service = where(props), props.get("Service")
        calling(
            f"DeleteTaskSet {task_set_id}",
            lambda: ecs.delete_task_set(
                **cluster, service=service, taskSet=task_set_id, force=True
            ),
            GONE,
        )

        def gone() -> bool:
            found = calling(
                "DescribeTaskSets",
                lambda: ecs.describe_task_sets(**cluster, service=service, taskSets=[task_set_id]),
                GONE,
            )
            return found is None or not found["taskSets"]

        wait_gone(self.patience, f"Task set {task_set_id}", gone)

    def _wait_steady(
        self, ecs: Any, props: dict[str, Any], task_set_id: str, failures: Failures
    ) -> None:
        what = f"Task set {task_set_id}"

        def parts() -> Parts:
            found = calling(
                "DescribeTaskSets",
                lambda: ecs.describe_task_sets(
                    **where(props), service=props.get("Service"), taskSets=[task_set_id]
                ),
            )
            if not found["taskSets"]:
                raise ProviderError(f"{what} is gone")
            return [task_set_part(found["taskSets"][0])]

        wait_steady(self.patience, what, parts, failures)
