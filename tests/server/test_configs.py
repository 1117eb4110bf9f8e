"""Deployment configurations: the 17 predefined ones and custom create/get/list/delete."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN, aws_cli, error_code, raw_error, unique

PREDEFINED = {
    "CodeDeployDefault.OneAtATime": "Server",
    "CodeDeployDefault.HalfAtATime": "Server",
    "CodeDeployDefault.AllAtOnce": "Server",
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": "Lambda",
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": "Lambda",
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": "Lambda",
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": "Lambda",
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": "Lambda",
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": "Lambda",
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": "Lambda",
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": "Lambda",
    "CodeDeployDefault.LambdaAllAtOnce": "Lambda",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": "ECS",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": "ECS",
    "CodeDeployDefault.ECSCanary10Percent5Minutes": "ECS",
    "CodeDeployDefault.ECSCanary10Percent15Minutes": "ECS",
    "CodeDeployDefault.ECSAllAtOnce": "ECS",
}


def config(cd: Any, name: str) -> dict[str, Any]:
    return dict(cd.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"])


def test_server_predefined_configs_match_the_api_reference(cd: Any) -> None:
    one = config(cd, "CodeDeployDefault.OneAtATime")
    assert one["minimumHealthyHosts"] == {"type": "MOST_CONCURRENCY", "value": 1}
    assert one["deploymentConfigId"] == "00000000-0000-0000-0000-000000000001"
    assert one["computePlatform"] == "Server"
    assert one["createTime"].timestamp() > 0
    assert config(cd, "CodeDeployDefault.HalfAtATime")["minimumHealthyHosts"] == {
        "type": "FLEET_PERCENT",
        "value": 50,
    }
    assert config(cd, "CodeDeployDefault.AllAtOnce")["minimumHealthyHosts"] == {
        "type": "HOST_COUNT",
        "value": 0,
    }


def test_traffic_shifting_predefined_configs(cd: Any) -> None:
    canary = config(cd, "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    assert canary["computePlatform"] == "Lambda"
    assert canary["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 30},
    }
    linear = config(cd, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
    assert linear["computePlatform"] == "ECS"
    assert linear["trafficRoutingConfig"]["timeBasedLinear"] == {
        "linearPercentage": 10,
        "linearInterval": 1,
    }
    assert config(cd, "CodeDeployDefault.ECSAllAtOnce")["trafficRoutingConfig"] == {
        "type": "AllAtOnce"
    }
    # The spellings differ between platforms, as in CodeDeploy.
    assert error_code(
        cd.get_deployment_config,
        deploymentConfigName="CodeDeployDefault.LambdaLinear10PercentEvery1Minutes",
    ) == ("DeploymentConfigDoesNotExistException")


def test_all_seventeen_are_listed_with_unique_ids(cd: Any) -> None:
    listed = cd.list_deployment_configs()["deploymentConfigsList"]
    assert set(PREDEFINED) <= set(listed)
    infos = [config(cd, name) for name in PREDEFINED]
    assert {i["deploymentConfigName"]: i["computePlatform"] for i in infos} == PREDEFINED
    assert len({i["deploymentConfigId"] for i in infos}) == 17


def test_custom_server_config_round_trip(cd: Any) -> None:
    name = unique("cfg")
    config_id = cd.create_deployment_config(
        deploymentConfigName=name,
        minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75},
        zonalConfig={"monitorDurationInSeconds": 60},
    )["deploymentConfigId"]
    got = config(cd, name)
    assert got["deploymentConfigId"] == config_id
    assert got["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}
    assert got["computePlatform"] == "Server"
    assert got["zonalConfig"] == {
        "monitorDurationInSeconds": 60,
        "firstZoneMonitorDurationInSeconds": 60,
        "minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 0},
    }
    assert name in cd.list_deployment_configs()["deploymentConfigsList"]
    cd.delete_deployment_config(deploymentConfigName=name)
    assert error_code(cd.get_deployment_config, deploymentConfigName=name) == (
        "DeploymentConfigDoesNotExistException"
    )


def test_custom_lambda_linear_config(cd: Any) -> None:
    name = unique("cfg")
    routing = {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 10},
    }
    cd.create_deployment_config(
        deploymentConfigName=name, computePlatform="Lambda", trafficRoutingConfig=routing
    )
    got = config(cd, name)
    assert got["trafficRoutingConfig"] == routing
    assert "minimumHealthyHosts" not in got


def test_create_errors(server: LiveServer, cd: Any) -> None:
    taken = unique("cfg")
    cd.create_deployment_config(
        deploymentConfigName=taken, minimumHealthyHosts={"type": "HOST_COUNT", "value": 0}
    )
    hosts = {"type": "HOST_COUNT", "value": 1}
    canary = {"type": "TimeBasedCanary", "timeBasedCanary": {"canaryPercentage": 10}}
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"deploymentConfigName": taken, "minimumHealthyHosts": hosts},
            "DeploymentConfigAlreadyExistsException",
        ),
        (
            {"deploymentConfigName": "CodeDeployDefault.Mine", "minimumHealthyHosts": hosts},
            "InvalidDeploymentConfigNameException",
        ),
        (
            {"deploymentConfigName": "has space", "minimumHealthyHosts": hosts},
            "InvalidDeploymentConfigNameException",
        ),
        (
            {"minimumHealthyHosts": {"type": "HOST_COUNT", "value": -1}},
            "InvalidMinimumHealthyHostValueException",
        ),
        (
            {"minimumHealthyHosts": {"type": "FLEET_PERCENT", "value": 100}},
            "InvalidMinimumHealthyHostValueException",
        ),
        (
            {"minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1}},
            "InvalidMinimumHealthyHostValueException",
        ),
        (
            {"minimumHealthyHosts": {"type": "HOST_COUNT", "value": "1"}},
            "InvalidMinimumHealthyHostValueException",
        ),
        ({}, "InvalidMinimumHealthyHostValueException"),
        (
            {"minimumHealthyHosts": hosts, "computePlatform": "Mainframe"},
            "InvalidComputePlatformException",
        ),
        ({"computePlatform": "Lambda"}, "InvalidTrafficRoutingConfigurationException"),
        (
            {"computePlatform": "Lambda", "trafficRoutingConfig": canary},
            "InvalidTrafficRoutingConfigurationException",
        ),
        (
            {
                "computePlatform": "ECS",
                "trafficRoutingConfig": {
                    "type": "TimeBasedLinear",
                    "timeBasedLinear": {"linearPercentage": 1, "linearInterval": 30},
                },
            },
            "InvalidTrafficRoutingConfigurationException",
        ),
        (
            {
                "computePlatform": "Lambda",
                "trafficRoutingConfig": {
                    "type": "AllAtOnce",
                    "timeBasedCanary": {"canaryPercentage": 5, "canaryInterval": 1},
                },
            },
            "InvalidTrafficRoutingConfigurationException",
        ),
        (
            {"minimumHealthyHosts": hosts, "trafficRoutingConfig": canary},
            "InvalidTrafficRoutingConfigurationException",
        ),
        (
            {"minimumHealthyHosts": hosts, "zonalConfig": {"monitorDurationInSeconds": -5}},
            "InvalidZonalDeploymentConfigurationException",
        ),
        (
            {
                "minimumHealthyHosts": hosts,
                "zonalConfig": {
                    "minimumHealthyHostsPerZone": {"type": "FLEET_PERCENT", "value": 120}
                },
            },
            "InvalidZonalDeploymentConfigurationException",
        ),
        (
            {
                "computePlatform": "Lambda",
                "zonalConfig": {},
                "trafficRoutingConfig": {"type": "AllAtOnce"},
            },
            "InvalidZonalDeploymentConfigurationException",
        ),
    ]
    for request, expected in cases:
        body = {"deploymentConfigName": unique("cfg"), **request}
        assert raw_error(server, "CreateDeploymentConfig", body) == expected, request
    assert raw_error(server, "CreateDeploymentConfig", {"minimumHealthyHosts": hosts}) == (
        "DeploymentConfigNameRequiredException"
    )


def test_delete_rules(cd: Any) -> None:
    assert error_code(
        cd.delete_deployment_config, deploymentConfigName="CodeDeployDefault.OneAtATime"
    ) == ("InvalidOperationException")
    name = unique("cfg")
    cd.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 2}
    )
    app = unique("app")
    cd.create_application(applicationName=app)
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName="g",
        serviceRoleArn=ROLE_ARN,
        deploymentConfigName=name,
    )
    assert error_code(cd.delete_deployment_config, deploymentConfigName=name) == (
        "DeploymentConfigInUseException"
    )
    cd.delete_deployment_group(applicationName=app, deploymentGroupName="g")
    cd.delete_deployment_config(deploymentConfigName=name)
    cd.delete_deployment_config(deploymentConfigName=name)  # already gone: no error


def test_aws_cli_get_deployment_config(server: LiveServer) -> None:
    got = aws_cli(
        server, "get-deployment-config", "--deployment-config-name", "CodeDeployDefault.OneAtATime"
    )
    assert got["deploymentConfigInfo"]["minimumHealthyHosts"] == {
        "type": "MOST_CONCURRENCY",
        "value": 1,
    }
    name = unique("cli")
    aws_cli(
        server,
        "create-deployment-config",
        "--deployment-config-name",
        name,
        "--minimum-healthy-hosts",
        "type=HOST_COUNT,value=3",
    )
    listed = aws_cli(server, "list-deployment-configs")
    assert name in listed["deploymentConfigsList"]
