"""What this server cannot carry out is refused at CreateDeployment with an error that
says why, instead of a deployment that fails later (or never does anything)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.server.crud_support import ROLE_ARN
from tests.support import raw_call

ON_PREMISES = [{"Key": "tier", "Value": "web", "Type": "KEY_AND_VALUE"}]
GITHUB = {
    "revisionType": "GitHub",
    "gitHubLocation": {"repository": "acme/shop", "commitId": "a" * 40},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path_factory.mktemp("platforms") / "server")


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName="servers")
    client.create_application(applicationName="functions", computePlatform="Lambda")
    client.create_application(applicationName="containers", computePlatform="ECS")
    return client


def refused(server: LiveServer, app: str, group: str, **extra: Any) -> tuple[str, str]:
    body = {"applicationName": app, "deploymentGroupName": group, **extra}
    status, answer = raw_call(server, "CreateDeployment", body)
    assert status == 400, answer
    return answer["__type"], answer["message"]


def test_a_lambda_deployment_is_carried_out_so_its_appspec_is_checked(
    server: LiveServer, cd: Any
) -> None:
    cd.create_deployment_group(
        applicationName="functions",
        deploymentGroupName="fn",
        serviceRoleArn=ROLE_ARN,
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
    )
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": "version: 0.0"}}
    code, message = refused(server, "functions", "fn", revision=revision)
    assert code == "InvalidRevisionException"
    assert message == "the appspec needs Resources"
    listed = cd.list_deployments(applicationName="functions", deploymentGroupName="fn")
    assert listed["deployments"] == []


def test_an_ecs_group_without_a_target_group_pair_is_refused(server: LiveServer, cd: Any) -> None:
    """Before the container backend is asked: the group's shape."""
    body = {
        "applicationName": "containers",
        "deploymentGroupName": "svc",
        "serviceRoleArn": ROLE_ARN,
        "deploymentConfigName": "CodeDeployDefault.ECSAllAtOnce",
        "ecsServices": [{"serviceName": "web", "clusterName": "main"}],
    }
    status, answer = raw_call(server, "CreateDeploymentGroup", body)
    assert (status, answer["__type"]) == (400, "InvalidTargetGroupPairException")
    assert "targetGroupPairInfoList" in answer["message"]
    assert cd.list_deployment_groups(applicationName="containers")["deploymentGroups"] == []


@pytest.mark.parametrize(
    ("group", "code", "words"),
    [
        (
            {"ec2TagFilters": [{"Key": "tier", "Value": "web", "Type": "KEY_AND_VALUE"}]},
            "InvalidTargetInstancesException",
            "EC2 instances by tag",
        ),
        (
            {
                "ec2TagSet": {
                    "ec2TagSetList": [[{"Key": "tier", "Value": "web", "Type": "KEY_AND_VALUE"}]]
                }
            },
            "InvalidTargetInstancesException",
            "EC2 instances by tag",
        ),
        ({"autoScalingGroups": ["web-asg"]}, "InvalidAutoScalingGroupException", "Auto Scaling"),
        (
            {
                "deploymentStyle": {
                    "deploymentType": "IN_PLACE",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL",
                },
                "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web"}]},
            },
            "InvalidLoadBalancerInfoException",
            "no load balancer",
        ),
        (
            {"alarmConfiguration": {"enabled": True, "alarms": [{"name": "cpu-high"}]}},
            "InvalidAlarmConfigException",
            "cpu-high are not defined on this server",
        ),
        (
            {
                "triggerConfigurations": [
                    {
                        "triggerName": "ops",
                        "triggerTargetArn": "arn:aws:sns:us-east-1:000000000000:ops",
                        "triggerEvents": ["DeploymentFailure"],
                    }
                ]
            },
            "InvalidInputException",
            "SNS topics are not supported",
        ),
    ],
)
def test_settings_this_server_cannot_carry_out_are_refused(
    server: LiveServer, cd: Any, group: dict[str, Any], code: str, words: str
) -> None:
    name = f"g-{abs(hash(str(group))) % 10**8}"
    cd.create_deployment_group(
        applicationName="servers",
        deploymentGroupName=name,
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=ON_PREMISES,
        **group,
    )
    got_code, message = refused(server, "servers", name, revision=GITHUB)
    assert got_code == code
    assert words in message
    assert (
        cd.list_deployments(applicationName="servers", deploymentGroupName=name)["deployments"]
        == []
    )
    # The group itself is kept as stored: nothing the user wrote is lost.
    info = cd.get_deployment_group(applicationName="servers", deploymentGroupName=name)
    assert info["deploymentGroupInfo"]["deploymentGroupName"] == name


def test_an_unread_alarm_is_allowed_when_poll_failures_are_ignored(
    server: LiveServer, cd: Any
) -> None:
    cd.create_deployment_group(
        applicationName="servers",
        deploymentGroupName="ignoring",
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=ON_PREMISES,
        alarmConfiguration={
            "enabled": True,
            "ignorePollAlarmFailure": True,
            "alarms": [{"name": "cpu-high"}],
        },
    )
    deployment = cd.create_deployment(
        applicationName="servers", deploymentGroupName="ignoring", revision=GITHUB
    )
    assert deployment["deploymentId"].startswith("d-")
