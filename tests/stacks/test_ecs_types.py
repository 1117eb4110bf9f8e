"""The ECS resource types without a server: their Fn::GetAtt attributes (an unknown one
is refused when the template is loaded), which changes replace them, and how their
CloudFormation properties become ECS API arguments."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from shipyard.stacks.errors import TemplateError
from shipyard.stacks.providers.clients import Clients
from shipyard.stacks.providers.ecs import CLUSTER, TASK_DEFINITION
from shipyard.stacks.providers.ecs_services import SERVICE
from shipyard.stacks.providers.ecs_shapes import arguments
from shipyard.stacks.providers.protocol import ProviderError
from shipyard.stacks.providers.registry import providers
from shipyard.stacks.template import load
from shipyard.stacks.types import TYPES

ECS_TYPES = {
    "Cluster": "AWS::ECS::Cluster",
    "Definition": "AWS::ECS::TaskDefinition",
    "Service": "AWS::ECS::Service",
    "Set": "AWS::ECS::TaskSet",
    "Primary": "AWS::ECS::PrimaryTaskSet",
}


def _referring(target: str, attribute: str) -> str:
    resources = "".join(f"  {name}:\n    Type: {kind}\n" for name, kind in ECS_TYPES.items())
    return (
        f"Resources:\n{resources}  User:\n    Type: AWS::ECS::Cluster\n"
        f"    Properties:\n      ClusterName: !GetAtt {target}.{attribute}\n"
    )


def test_every_type_has_a_provider_and_every_provider_a_type() -> None:
    found = providers(Clients("http://127.0.0.1:1", "us-east-1", lambda: ("k", "s")))
    assert set(found) == set(TYPES)
    assert set(ECS_TYPES.values()) <= set(TYPES)


@pytest.mark.parametrize(
    ("target", "attribute"),
    [
        ("Cluster", "Arn"),
        ("Definition", "TaskDefinitionArn"),
        ("Service", "Name"),
        ("Service", "ServiceArn"),
        ("Set", "Id"),
    ],
)
def test_their_attributes_are_known(target: str, attribute: str) -> None:
    assert "User" in load(_referring(target, attribute)).resources


@pytest.mark.parametrize(
    ("target", "attribute"),
    [
        ("Cluster", "Name"),
        ("Definition", "Arn"),
        ("Service", "Arn"),
        ("Set", "Arn"),
        ("Primary", "Id"),
    ],
)
def test_unknown_attributes_are_refused(target: str, attribute: str) -> None:
    with pytest.raises(
        TemplateError,
        match=f"resource {target} does not support attribute type {attribute} in Fn::GetAtt",
    ):
        load(_referring(target, attribute))


@pytest.mark.parametrize(
    ("kind", "change", "replaced"),
    [
        ("AWS::ECS::Cluster", {"ClusterName": "b"}, True),
        ("AWS::ECS::Cluster", {"Tags": [{"Key": "k", "Value": "v"}]}, False),
        ("AWS::ECS::TaskDefinition", {"Memory": "1024"}, True),
        ("AWS::ECS::Service", {"DesiredCount": 3}, False),
        ("AWS::ECS::Service", {"TaskDefinition": "arn:td:2"}, False),
        ("AWS::ECS::Service", {"LoadBalancers": []}, False),
        ("AWS::ECS::Service", {"NetworkConfiguration": {}}, False),
        ("AWS::ECS::Service", {"ServiceName": "other"}, True),
        ("AWS::ECS::Service", {"Cluster": "other"}, True),
        ("AWS::ECS::Service", {"LaunchType": "FARGATE"}, True),
        ("AWS::ECS::Service", {"DeploymentController": {"Type": "ECS"}}, True),
        ("AWS::ECS::TaskSet", {"Scale": {"Unit": "PERCENT", "Value": 50}}, False),
        ("AWS::ECS::TaskSet", {"TaskDefinition": "arn:td:2"}, True),
        ("AWS::ECS::TaskSet", {"LoadBalancers": []}, True),
        ("AWS::ECS::TaskSet", {"ExternalId": "x"}, True),
        ("AWS::ECS::PrimaryTaskSet", {"TaskSetId": "ecs-svc/2"}, False),
        ("AWS::ECS::PrimaryTaskSet", {"Service": "other"}, True),
    ],
)
def test_what_replaces_them(kind: str, change: dict[str, Any], replaced: bool) -> None:
    before = {"ClusterName": "a", "Memory": "512", "DesiredCount": 1, "Scale": {"Value": 100}}
    assert TYPES[kind].needs_replacement(before, before | change) is replaced


@pytest.fixture(scope="module")
def ecs() -> Any:
    return boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def test_properties_become_api_arguments_by_the_model(ecs: Any) -> None:
    props = {
        "Family": "web",
        "Cpu": 256,  # a number in YAML; the API takes text
        "NetworkMode": "bridge",
        "Volumes": [{"Name": "v", "EFSVolumeConfiguration": {"FilesystemId": "fs-1"}}],
        "ContainerDefinitions": [
            {
                "Name": "web",
                "Memory": "64",  # text from a parameter; the API takes a number
                "Essential": "true",
                "PortMappings": [{"ContainerPort": 80}],
                "DockerLabels": {"Team-Name": "x"},  # a map: its keys stay as written
                "LogConfiguration": {"LogDriver": "json-file", "Options": {"Max-Size": "1m"}},
            }
        ],
    }
    assert arguments(ecs, "RegisterTaskDefinition", "D", props, TASK_DEFINITION) == {
        "family": "web",
        "cpu": "256",
        "networkMode": "bridge",
        "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}],
        "containerDefinitions": [
            {
                "name": "web",
                "memory": 64,
                "essential": True,
                "portMappings": [{"containerPort": 80}],
                "dockerLabels": {"Team-Name": "x"},
                "logConfiguration": {"logDriver": "json-file", "options": {"Max-Size": "1m"}},
            }
        ],
    }
    assert arguments(
        ecs,
        "CreateService",
        "S",
        {"PlacementStrategies": [{"Type": "spread"}], "DesiredCount": "2"},
        SERVICE,
    ) == {"placementStrategy": [{"type": "spread"}], "desiredCount": 2}
    assert arguments(ecs, "CreateCluster", "C", {"ClusterSettings": []}, CLUSTER) == {
        "settings": []
    }


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"Family": "web", "Colour": "blue"}, r"#: extraneous key \[Colour\] is not permitted"),
        (
            {"ContainerDefinitions": [{"Name": "web", "Imagee": "x"}]},
            r"#/ContainerDefinitions/0: extraneous key \[Imagee\] is not permitted",
        ),
    ],
)
def test_unknown_properties_are_refused(ecs: Any, props: dict[str, Any], message: str) -> None:
    with pytest.raises(
        ProviderError, match="Properties validation failed for resource D with message: " + message
    ):
        arguments(ecs, "RegisterTaskDefinition", "D", props, TASK_DEFINITION)
