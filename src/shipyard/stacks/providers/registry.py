"""Which provider carries out each resource type (the types stacks/types.py lists)."""

from __future__ import annotations

from shipyard.stacks.providers.bluegreen import with_blue_green
from shipyard.stacks.providers.clients import Clients
from shipyard.stacks.providers.codedeploy import (
    ApplicationProvider,
    DeploymentConfigProvider,
    DeploymentGroupProvider,
)
from shipyard.stacks.providers.ecs import (
    ClusterProvider,
    PrimaryTaskSetProvider,
    TaskDefinitionProvider,
)
from shipyard.stacks.providers.ecs_services import ServiceProvider, TaskSetProvider
from shipyard.stacks.providers.elbv2 import (
    ListenerProvider,
    ListenerRuleProvider,
    LoadBalancerProvider,
    TargetGroupProvider,
)
from shipyard.stacks.providers.lambda_ import FunctionProvider, VersionProvider
from shipyard.stacks.providers.lambda_alias import AliasProvider
from shipyard.stacks.providers.protocol import Provider


def providers(clients: Clients) -> dict[str, Provider]:
    # The task set provider, once registered, also runs the blue/green hook's deployments.
    return with_blue_green(clients, _plain(clients))


def _plain(clients: Clients) -> dict[str, Provider]:
    return {
        "AWS::Lambda::Function": FunctionProvider(clients),
        "AWS::Lambda::Version": VersionProvider(clients),
        "AWS::Lambda::Alias": AliasProvider(clients),
        "AWS::CodeDeploy::Application": ApplicationProvider(clients),
        "AWS::CodeDeploy::DeploymentGroup": DeploymentGroupProvider(clients),
        "AWS::CodeDeploy::DeploymentConfig": DeploymentConfigProvider(clients),
        "AWS::ElasticLoadBalancingV2::LoadBalancer": LoadBalancerProvider(clients),
        "AWS::ElasticLoadBalancingV2::TargetGroup": TargetGroupProvider(clients),
        "AWS::ElasticLoadBalancingV2::Listener": ListenerProvider(clients),
        "AWS::ElasticLoadBalancingV2::ListenerRule": ListenerRuleProvider(clients),
        "AWS::ECS::Cluster": ClusterProvider(clients),
        "AWS::ECS::TaskDefinition": TaskDefinitionProvider(clients),
        "AWS::ECS::Service": ServiceProvider(clients),
        "AWS::ECS::TaskSet": TaskSetProvider(clients),
        "AWS::ECS::PrimaryTaskSet": PrimaryTaskSetProvider(clients),
    }
