"""The CodeDeploy blue/green hook as tables, without I/O: the example template's hook
as the deployment sees it, each malformed hook refused with CloudFormation's message,
and which updates run as a green deployment."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shipyard.stacks import bluegreen
from shipyard.stacks.bluegreen import ADD, MODIFY, REMOVE, REPLACE
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.text import parse

EXAMPLE = Path(__file__).parents[2] / "examples/stacks/ecs-blue-green/template.yml"


def example() -> dict[str, Any]:
    return parse(EXAMPLE.read_text())


def hook_props(document: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = document["Hooks"]["CodeDeployBlueGreenHook"]["Properties"]
    return props


def test_the_example_hook_as_the_deployment_sees_it() -> None:
    hook = bluegreen.find(example())
    assert hook is not None
    assert hook.service == "Service"
    assert hook.task_definitions == ("TaskDefinition", "TaskDefinitionGreen")
    assert hook.task_sets == ("BlueTaskSet", "GreenTaskSet")
    assert (hook.prod_listener, hook.test_listener) == ("ProductionListener", "TestListener")
    assert hook.target_groups == ("BlueTargetGroup", "GreenTargetGroup")
    assert hook.routing == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 1},
    }
    assert hook.functions == {"AfterAllowTestTraffic": "CodeDeployHook_CheckGreen"}


def test_a_template_without_the_transform_or_hooks_has_no_hook() -> None:
    document = example()
    del document["Transform"], document["Hooks"]
    assert bluegreen.find(document) is None


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        (
            None,
            {
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"canaryPercentage": 15, "canaryInterval": 5},
            },
        ),
        ({"Type": "AllAtOnce"}, {"type": "AllAtOnce"}),
        (
            {
                "Type": "TimeBasedLinear",
                "TimeBasedLinear": {"StepPercentage": 25, "BakeTimeMins": 2},
            },
            {
                "type": "TimeBasedLinear",
                "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 2},
            },
        ),
        (
            {"Type": "TimeBasedCanary", "TimeBasedCanary": {"StepPercentage": "30"}},
            {
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"canaryPercentage": 30, "canaryInterval": 5},
            },
        ),
    ],
)
def test_traffic_routing_becomes_a_deployment_config(
    routing: Any, expected: dict[str, Any]
) -> None:
    assert bluegreen.traffic_routing(routing) == expected


SCHEMA = 'Failed to parse the "Hooks" section'


def _without(path: str) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = hook_props(document)
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[int(last) if last.isdigit() else last]

    return change


def _set(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = hook_props(document)
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return change


def _document(key: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        if value is None:
            del document[key]
        else:
            document[key] = value

    return change


def _resource(logical_id: str, path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        node = document["Resources"][logical_id]
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value

    return change


ECS_ATTRS = "Applications.0.ECSAttributes"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_without("ServiceRole"), f"{SCHEMA}.*ServiceRole is required"),
        (_set("Applications", []), "Applications must list exactly one ECS service"),
        (
            _set("Applications.0.Target.Type", "AWS::Lambda::Function"),
            "Target.Type must be AWS::ECS::Service",
        ),
        (
            _set(f"{ECS_ATTRS}.TaskDefinitions", ["TaskDefinition"]),
            "TaskDefinitions must list two logical ids",
        ),
        (
            _set(f"{ECS_ATTRS}.TaskSets", ["BlueTaskSet", "BlueTaskSet"]),
            "blue and green logical ids must differ",
        ),
        (_without(f"{ECS_ATTRS}.TrafficRouting.ProdTrafficRoute"), "ProdTrafficRoute is required"),
        (
            _set(f"{ECS_ATTRS}.TrafficRouting.TargetGroups", ["BlueTargetGroup", "Nope"]),
            "TargetGroups Nope is not a resource",
        ),
        (
            _set(f"{ECS_ATTRS}.TaskSets", ["Cluster", "GreenTaskSet"]),
            "TaskSets Cluster is a AWS::ECS::Cluster, not a AWS::ECS::TaskSet",
        ),
        (
            _set(f"{ECS_ATTRS}.TaskDefinitions", ["TaskDefinition", "Cluster"]),
            "green logical id Cluster must not be a resource",
        ),
        (
            _set("TrafficRoutingConfig", {"Type": "Sometimes"}),
            "TrafficRoutingConfig.Type must be one of",
        ),
        (
            _set("TrafficRoutingConfig.TimeBasedCanary.StepPercentage", 10),
            "StepPercentage must be a whole number from 14 to 99",
        ),
        (
            _set("TrafficRoutingConfig.TimeBasedCanary.BakeTimeMins", -1),
            "BakeTimeMins must be a whole number",
        ),
        (
            _set("AdditionalOptions.TerminationWaitTimeInMinutes", 500),
            "TerminationWaitTimeInMinutes must be",
        ),
        (_set("LifecycleEventHooks.BeforeTraffic", "f"), r"unknown events \[BeforeTraffic\]"),
        (
            _set("LifecycleEventHooks.AfterInstall", 3),
            "LifecycleEventHooks.AfterInstall must name a Lambda function",
        ),
        (_set("Surprise", 1), r"unknown hook properties \[Surprise\]"),
        (
            _resource("Service", "Properties.DeploymentController", {"Type": "ECS"}),
            'resource "Resources->Service".*DeploymentController: \\{Type: EXTERNAL\\}',
        ),
        (
            _document("Transform", None),
            "the AWS::CodeDeploy::BlueGreen hook needs Transform: AWS::CodeDeployBlueGreen",
        ),
        (_document("Hooks", None), "the AWS::CodeDeployBlueGreen transform needs a Hooks section"),
        (_document("Outputs", {"Url": {"Value": "x"}}), "Outputs are not supported"),
    ],
)
def test_a_malformed_hook_is_refused_with_cloudformations_message(
    change: Any, message: str
) -> None:
    document = example()
    change(document)
    with pytest.raises(TemplateError, match=message) as refused:
        bluegreen.find(document)
    assert "AWS::CodeDeploy" in refused.value.message


def test_a_second_service_is_refused() -> None:
    document = example()
    document["Resources"]["Other"] = copy.deepcopy(document["Resources"]["Service"])
    with pytest.raises(TemplateError, match="only one ECS service per template"):
        bluegreen.find(document)


def _hook() -> bluegreen.Hook:
    hook = bluegreen.find(example())
    assert hook is not None
    return hook


@pytest.mark.parametrize(
    ("changes", "blue_green", "triggers"),
    [
        ({}, False, ()),
        ({"TaskDefinition": REPLACE}, True, ("TaskDefinition",)),
        ({"TaskDefinition": MODIFY}, True, ("TaskDefinition",)),
        ({"BlueTaskSet": REPLACE}, True, ("BlueTaskSet",)),
        (
            {"TaskDefinition": REPLACE, "BlueTaskSet": REPLACE},
            True,
            ("TaskDefinition", "BlueTaskSet"),
        ),
        # In place: the task set's scale, the service's count, a listener: applied directly.
        ({"BlueTaskSet": MODIFY}, False, ()),
        ({"Service": MODIFY, "CheckGreen": MODIFY}, False, ()),
        ({"Extra": ADD, "Old": REMOVE}, False, ()),
    ],
)
def test_which_updates_run_blue_green(
    changes: dict[str, str], blue_green: bool, triggers: tuple[str, ...]
) -> None:
    decision = bluegreen.decide(_hook(), changes)
    assert (decision.blue_green, decision.triggers) == (blue_green, triggers)


@pytest.mark.parametrize(
    "others", [{"Service": MODIFY}, {"CheckGreen": MODIFY}, {"Extra": ADD}, {"Old": REMOVE}]
)
def test_a_green_deployment_may_not_change_anything_else(others: dict[str, str]) -> None:
    with pytest.raises(TemplateError) as refused:
        bluegreen.decide(_hook(), {"TaskDefinition": REPLACE, **others})
    (other,) = others
    assert refused.value.message.startswith(
        "'CodeDeployBlueGreenHook' of type AWS::CodeDeploy::BlueGreen failed with message:"
    )
    assert f"also changes [{other}]" in refused.value.message


def test_without_a_hook_every_update_is_direct() -> None:
    assert not bluegreen.decide(None, {"TaskDefinition": REPLACE}).blue_green


def test_each_resource_counts_its_own_change_only() -> None:
    """The task set refers to the task definition: resolved against the resources as
    they are, it is unchanged when only the task definition changes."""
    live = {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "f", "Timeout": 5}},
        "Alias": {
            "Type": "AWS::Lambda::Alias",
            "Properties": {"FunctionName": {"Ref": "Fn"}, "Name": "live"},
        },
        "New": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "n"}},
    }
    rows = {
        "Fn": {
            "resource_type": "AWS::Lambda::Function",
            "properties": {"FunctionName": "f", "Timeout": 3},
        },
        "Alias": {
            "resource_type": "AWS::Lambda::Alias",
            "properties": {"FunctionName": "f", "Name": "live"},
        },
        "Gone": {"resource_type": "AWS::Lambda::Function", "properties": {"FunctionName": "g"}},
    }

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and "Ref" in value:
            return rows[value["Ref"]]["properties"]["FunctionName"]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    assert bluegreen.changes(live, rows, resolve) == {"Fn": MODIFY, "New": ADD, "Gone": REMOVE}


def test_the_deployment_document_names_what_exists() -> None:
    hook = _hook()
    rows = {
        "ProductionListener": {"physical_id": "arn:listener/prod"},
        "TestListener": {"physical_id": "arn:listener/test"},
        "BlueTargetGroup": {"physical_id": "arn:tg/b", "attributes": {"TargetGroupName": "web-b"}},
        "GreenTargetGroup": {"physical_id": "arn:tg/g", "attributes": {"TargetGroupName": "web-g"}},
    }
    task_set = {
        "Cluster": "web-Cluster-X",
        "Service": "arn:aws:ecs:eu-west-1:1:service/web-Cluster-X/web-Service-Y",
        "TaskDefinition": "arn:aws:ecs:eu-west-1:1:task-definition/web:2",
        "LoadBalancers": [
            {"ContainerName": "web", "ContainerPort": 80, "TargetGroupArn": "arn:tg/b"}
        ],
    }
    doc = bluegreen.deployment(hook, "shop", rows, task_set, lambda value: value)
    assert doc["application"] == "CloudFormation-shop"
    assert doc["group"] == "CodeDeployBlueGreenHook"
    assert doc["config"].startswith("CloudFormation-shop-")
    assert (doc["cluster"], doc["service"]) == ("web-Cluster-X", "web-Service-Y")
    assert (doc["containerName"], doc["containerPort"]) == ("web", 80)
    assert doc["prodListeners"] == ["arn:listener/prod"]
    assert doc["testListeners"] == ["arn:listener/test"]
    assert doc["targetGroups"] == ["web-b", "web-g"]
    assert bluegreen.stack_managed({"applicationName": doc["application"]})
    assert not bluegreen.stack_managed({"applicationName": "shop"})
