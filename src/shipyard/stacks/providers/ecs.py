"""AWS::ECS::Cluster, TaskDefinition and PrimaryTaskSet through the ``ecs`` client (the
embedded ECS on Podman, or AWS). Services and task sets, which wait for their tasks, are
in ecs_services.py.

Physical ids as CloudFormation's: a cluster's name, a task definition's ARN with its
revision, ``cluster|service`` for a primary task set.
"""

from __future__ import annotations

from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.ecs_shapes import arguments
from shipyard.stacks.providers.protocol import Current, Outcome, ProviderError, Request

GONE = (
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "ServiceNotActiveException",
    "TaskSetNotFoundException",
)


def api_names(properties: str, **renamed: str) -> dict[str, str]:
    """CloudFormation property → API member: the name with a small first letter unless
    ``renamed`` says otherwise."""
    names = {name: name[:1].lower() + name[1:] for name in properties.split()}
    return names | renamed


CLUSTER = api_names(
    "ClusterName Configuration CapacityProviders DefaultCapacityProviderStrategy "
    "ServiceConnectDefaults Tags",
    ClusterSettings="settings",
)
TASK_DEFINITION = api_names(
    "Family ContainerDefinitions Cpu Memory NetworkMode RequiresCompatibilities "
    "ExecutionRoleArn TaskRoleArn Volumes PlacementConstraints ProxyConfiguration "
    "InferenceAccelerators IpcMode PidMode RuntimePlatform EphemeralStorage Tags "
    "EnableFaultInjection"
)
PRIMARY_TASK_SET = api_names("Cluster Service", TaskSetId="primaryTaskSet")


class ClusterProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        ecs = self.clients.client("ecs")
        name = str(request.properties.get("ClusterName") or request.name)
        settings = arguments(ecs, "CreateCluster", request.logical_id, request.properties, CLUSTER)
        # CreateCluster answers an existing cluster as if it made it; the stack would
        # then delete a cluster it does not own.
        found = calling("DescribeClusters", lambda: ecs.describe_clusters(clusters=[name]))
        if any(c.get("status") == "ACTIVE" for c in found.get("clusters", [])):
            raise ProviderError(
                f"Resource of type 'AWS::ECS::Cluster' with identifier '{name}' already exists."
            )
        created = calling(
            f"CreateCluster {name}",
            lambda: ecs.create_cluster(**(settings | {"clusterName": name})),
        )["cluster"]
        return Outcome(name, {"Arn": created["clusterArn"]})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        # Settings, tags and capacity providers: the embedded ECS has no UpdateCluster.
        arguments(
            self.clients.client("ecs"),
            "CreateCluster",
            request.logical_id,
            request.properties,
            CLUSTER,
        )
        return Outcome(current.physical_id, current.attributes)

    def delete(self, current: Current) -> None:
        ecs = self.clients.client("ecs")
        calling(
            f"DeleteCluster {current.physical_id}",
            lambda: ecs.delete_cluster(cluster=current.physical_id),
            GONE,
        )


class TaskDefinitionProvider:
    """Every change registers a new revision (types.py: any change replaces it); the
    one replaced is deregistered when the update is cleaned up."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        ecs = self.clients.client("ecs")
        # Without a Family, the generated name less its per-replacement suffix
        # (stack-logical): a replacement is the family's next revision, as in AWS.
        family = str(request.properties.get("Family") or request.name.rsplit("-", 1)[0])
        settings = arguments(
            ecs, "RegisterTaskDefinition", request.logical_id, request.properties, TASK_DEFINITION
        )
        registered = calling(
            f"RegisterTaskDefinition {family}",
            lambda: ecs.register_task_definition(**(settings | {"family": family})),
        )["taskDefinition"]
        arn = registered["taskDefinitionArn"]
        return Outcome(arn, {"TaskDefinitionArn": arn})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return Outcome(current.physical_id, current.attributes)  # never in place

    def delete(self, current: Current) -> None:
        ecs = self.clients.client("ecs")
        arn = current.physical_id
        # ECS answers a revision it does not know with a plain ClientException.
        found = calling(
            "DescribeTaskDefinition",
            lambda: ecs.describe_task_definition(taskDefinition=arn),
            ("ClientException",),
        )
        if found is not None and found["taskDefinition"].get("status") != "INACTIVE":
            calling(
                f"DeregisterTaskDefinition {arn}",
                lambda: ecs.deregister_task_definition(taskDefinition=arn),
            )


class PrimaryTaskSetProvider:
    """UpdateServicePrimaryTaskSet. Deleting it changes nothing: a service keeps a
    primary task set until the task set or the service goes."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        self._point(request)
        return Outcome(f"{props.get('Cluster', 'default')}|{props.get('Service')}")

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        if request.properties.get("TaskSetId") != current.properties.get("TaskSetId"):
            self._point(request)
        return Outcome(current.physical_id, current.attributes)

    def delete(self, current: Current) -> None:
        return None

    def _point(self, request: Request) -> None:
        ecs = self.clients.client("ecs")
        settings = arguments(
            ecs,
            "UpdateServicePrimaryTaskSet",
            request.logical_id,
            request.properties,
            PRIMARY_TASK_SET,
        )
        calling(
            f"UpdateServicePrimaryTaskSet {request.properties.get('TaskSetId')}",
            lambda: ecs.update_service_primary_task_set(**settings),
        )


def where(props: dict[str, Any]) -> dict[str, Any]:
    """The ``cluster`` argument when the resource names one (else ECS's default)."""
    return {"cluster": str(props["Cluster"])} if props.get("Cluster") else {}
