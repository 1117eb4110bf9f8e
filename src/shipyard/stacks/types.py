"""What the engine knows of each resource type it supports: its ``Fn::GetAtt``
attributes and which property changes need a new physical resource.

The providers (``stacks.providers``) carry the types out; this table is what the
template engine and change sets need without any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    name: str
    attributes: frozenset[str]
    # Properties whose change replaces the resource; ALL: any change does.
    replace_on: frozenset[str]
    # The property that names the physical resource (a generated name when absent).
    name_property: str = ""

    def needs_replacement(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        if ALL in self.replace_on:
            return dict(old) != dict(new)
        return any(old.get(key) != new.get(key) for key in self.replace_on)


ALL = "*"


def _type(name: str, attributes: str, replace_on: str, name_property: str = "") -> ResourceType:
    return ResourceType(
        name, frozenset(attributes.split()), frozenset(replace_on.split()), name_property
    )


TYPES: dict[str, ResourceType] = {
    t.name: t
    for t in (
        _type("AWS::Lambda::Function", "Arn", "FunctionName", "FunctionName"),
        # Versions are immutable: any change publishes a new one.
        _type("AWS::Lambda::Version", "Version FunctionArn", ALL),
        _type("AWS::Lambda::Alias", "AliasArn", "FunctionName Name", "Name"),
        _type(
            "AWS::CodeDeploy::Application", "", "ApplicationName ComputePlatform", "ApplicationName"
        ),
        _type(
            "AWS::CodeDeploy::DeploymentGroup",
            "",
            "ApplicationName DeploymentGroupName",
            "DeploymentGroupName",
        ),
        _type("AWS::CodeDeploy::DeploymentConfig", "", ALL, "DeploymentConfigName"),
        _type(
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "DNSName LoadBalancerName LoadBalancerFullName CanonicalHostedZoneID SecurityGroups",
            "Name Scheme Type IpAddressType",
        ),
        _type(
            "AWS::ElasticLoadBalancingV2::TargetGroup",
            "TargetGroupArn TargetGroupName TargetGroupFullName LoadBalancerArns",
            "Name Port Protocol ProtocolVersion VpcId TargetType",
        ),
        _type("AWS::ElasticLoadBalancingV2::Listener", "ListenerArn", "LoadBalancerArn"),
        _type("AWS::ElasticLoadBalancingV2::ListenerRule", "RuleArn", "ListenerArn"),
        _type("AWS::ECS::Cluster", "Arn", "ClusterName", "ClusterName"),
        # A task definition revision is immutable: any change registers a new one.
        _type("AWS::ECS::TaskDefinition", "TaskDefinitionArn", ALL),
        # Named (not by its ARN) until created, so a create cut short is deleted by name.
        _type(
            "AWS::ECS::Service",
            "Name ServiceArn",
            "Cluster ServiceName LaunchType Role SchedulingStrategy DeploymentController",
            "ServiceName",
        ),
        # Only Scale (and Tags) change in place.
        _type(
            "AWS::ECS::TaskSet",
            "Id",
            "Cluster Service TaskDefinition ExternalId LaunchType LoadBalancers "
            "NetworkConfiguration PlatformVersion ServiceRegistries CapacityProviderStrategy",
        ),
        _type("AWS::ECS::PrimaryTaskSet", "", "Cluster Service"),
    )
}


def unsupported(types: list[str]) -> list[str]:
    """The types in ``types`` Shipyard has no provider for, in template order, once each."""
    return list(dict.fromkeys(t for t in types if t not in TYPES))
