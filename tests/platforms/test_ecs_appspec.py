"""The ECS appspec: every property CodeDeploy's takes, keys in either case, and each
malformed or missing property refused with the field named."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidRevision
from shipyard.platforms.ecs_appspec import EcsAppSpec, parse

TASK_DEFINITION = "arn:aws:ecs:us-east-1:111222333444:task-definition/shop:7"
FULL = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "arn:aws:ecs:us-east-1:111222333444:task-definition/shop:7"
        LoadBalancerInfo:
          ContainerName: "web"
          ContainerPort: 8080
        PlatformVersion: "1.4.0"
        NetworkConfiguration:
          AwsvpcConfiguration:
            Subnets: ["subnet-1", "subnet-2"]
            SecurityGroups: ["sg-1"]
            AssignPublicIp: "DISABLED"
        CapacityProviderStrategy:
          - Base: 1
            CapacityProvider: "FARGATE_SPOT"
            Weight: 2
Hooks:
  - BeforeInstall: "LambdaBeforeInstall"
  - AfterAllowTestTraffic: "LambdaTestTraffic"
"""


def test_every_property_is_read() -> None:
    spec = parse(FULL)

    assert spec == EcsAppSpec(
        task_definition=TASK_DEFINITION,
        container_name="web",
        container_port=8080,
        platform_version="1.4.0",
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": ["subnet-1", "subnet-2"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT", "base": 1, "weight": 2}],
        hooks={
            "BeforeInstall": "LambdaBeforeInstall",
            "AfterAllowTestTraffic": "LambdaTestTraffic",
        },
    )
    assert EcsAppSpec.from_doc(spec.to_doc()) == spec


def test_keys_in_lower_case_and_json_are_the_same_appspec() -> None:
    json_text = (
        '{"version": 0.0, "resources": [{"svc": {"type": "AWS::ECS::Service", "properties": '
        '{"taskDefinition": "shop:3", "loadBalancerInfo": {"containerName": "web", '
        '"containerPort": "80"}}}}]}'
    )
    spec = parse(json_text)
    assert (spec.task_definition, spec.container_name, spec.container_port) == ("shop:3", "web", 80)
    assert spec.hooks == {}


def _without(line: str) -> str:
    assert line in FULL
    return FULL.replace(line + "\n", "")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            _without(f'        TaskDefinition: "{TASK_DEFINITION}"'),
            "Resources[0].Properties needs TaskDefinition",
        ),
        (_without('          ContainerName: "web"'), "LoadBalancerInfo needs ContainerName"),
        (_without("          ContainerPort: 8080"), "LoadBalancerInfo needs ContainerPort"),
        (
            FULL.replace("ContainerPort: 8080", "ContainerPort: http"),
            "ContainerPort must be a port",
        ),
        (
            FULL.replace("ContainerPort: 8080", "ContainerPort: 70000"),
            "ContainerPort must be a port",
        ),
        (
            FULL.replace("task-definition/shop:7", "task-definition/shop:x"),
            "TaskDefinition must be",
        ),
        (
            FULL.replace("AWS::ECS::Service", "AWS::Lambda::Function"),
            "Type must be AWS::ECS::Service",
        ),
        (FULL.replace('Subnets: ["subnet-1", "subnet-2"]', "Subnets: []"), "at least one subnet"),
        (FULL.replace('"DISABLED"', '"MAYBE"'), "AssignPublicIp must be ENABLED or DISABLED"),
        (FULL.replace("Weight: 2", "Weight: -1"), "Weight must be 0-1000"),
        (FULL.replace("BeforeInstall:", "ApplicationStart:"), "not an ECS lifecycle hook"),
        (FULL.replace("AfterAllowTestTraffic:", "BeforeInstall:"), "BeforeInstall is given twice"),
        (FULL.replace("version: 0.0", "version: 1.0"), "appspec version must be 0.0"),
        ("Resources: [", "not valid YAML or JSON"),
    ],
)
def test_a_bad_property_is_refused_with_its_field(text: str, words: str) -> None:
    with pytest.raises(InvalidRevision) as raised:
        parse(text)
    assert words in str(raised.value)
