"""Deployment groups: every member stored, defaults, validation, rename, delete."""

from __future__ import annotations

from typing import Any

from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN, aws_cli, error_code, raw_error, unique


def new_app(cd: Any, platform: str = "Server") -> str:
    name = unique("app")
    cd.create_application(applicationName=name, computePlatform=platform)
    return name


def create(cd: Any, app: str, name: str = "g", **members: Any) -> str:
    response = cd.create_deployment_group(
        applicationName=app, deploymentGroupName=name, serviceRoleArn=ROLE_ARN, **members
    )
    return str(response["deploymentGroupId"])


def info(cd: Any, app: str, name: str = "g") -> dict[str, Any]:
    group = cd.get_deployment_group(applicationName=app, deploymentGroupName=name)
    return dict(group["deploymentGroupInfo"])


def test_defaults_of_a_server_group(cd: Any) -> None:
    app = new_app(cd)
    group_id = create(cd, app)
    got = info(cd, app)
    assert got["deploymentGroupId"] == group_id
    assert got["applicationName"] == app
    assert got["deploymentGroupName"] == "g"
    assert got["serviceRoleArn"] == ROLE_ARN
    assert got["computePlatform"] == "Server"
    assert got["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert got["deploymentStyle"] == {
        "deploymentType": "IN_PLACE",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }
    assert got["outdatedInstancesStrategy"] == "UPDATE"
    assert got["alarmConfiguration"] == {
        "enabled": False,
        "ignorePollAlarmFailure": False,
        "alarms": [],
    }
    assert got["onPremisesInstanceTagFilters"] == []
    assert "targetRevision" not in got


def test_all_members_are_stored(cd: Any) -> None:
    app = new_app(cd)
    config = unique("cfg")
    cd.create_deployment_config(
        deploymentConfigName=config, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    members: dict[str, Any] = {
        "deploymentConfigName": config,
        "onPremisesTagSet": {
            "onPremisesTagSetList": [
                [{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
                [{"Key": "env", "Type": "KEY_ONLY"}],
            ]
        },
        "ec2TagFilters": [{"Key": "Name", "Value": "web", "Type": "KEY_AND_VALUE"}],
        "autoScalingGroups": ["asg-1"],
        "triggerConfigurations": [
            {
                "triggerName": "notify",
                "triggerTargetArn": "arn:aws:sns:us-east-1:000000000000:deploys",
                "triggerEvents": ["DeploymentFailure", "InstanceFailure"],
            }
        ],
        "alarmConfiguration": {"enabled": True, "alarms": [{"name": "errors"}]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
        "outdatedInstancesStrategy": "IGNORE",
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "KEEP_ALIVE",
                "terminationWaitTimeInMinutes": 5,
            },
            "deploymentReadyOption": {
                "actionOnTimeout": "STOP_DEPLOYMENT",
                "waitTimeInMinutes": 30,
            },
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
        },
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web-tg"}]},
        "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["AZRebalance"]},
        "terminationHookEnabled": True,
    }
    create(cd, app, **members)
    got = info(cd, app)
    for member, value in members.items():
        if member == "autoScalingGroups":
            assert got[member] == [{"name": "asg-1"}]
        elif member == "alarmConfiguration":
            assert got[member] == {**value, "ignorePollAlarmFailure": False}
        else:
            assert got[member] == value, member


def test_lambda_group_defaults_to_traffic_shifting(cd: Any) -> None:
    app = new_app(cd, "Lambda")
    create(cd, app)
    got = info(cd, app)
    assert got["computePlatform"] == "Lambda"
    assert got["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert got["deploymentStyle"]["deploymentType"] == "BLUE_GREEN"
    assert error_code(
        cd.create_deployment_group,
        applicationName=app,
        deploymentGroupName="in-place",
        serviceRoleArn=ROLE_ARN,
        deploymentStyle={"deploymentType": "IN_PLACE"},
    ) == ("InvalidDeploymentStyleException")


def test_create_errors(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    create(cd, app)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"deploymentGroupName": "g"}, "DeploymentGroupAlreadyExistsException"),
        ({"deploymentGroupName": "bad name"}, "InvalidDeploymentGroupNameException"),
        ({"applicationName": unique("missing")}, "ApplicationDoesNotExistException"),
        ({"serviceRoleArn": "not-a-role"}, "InvalidRoleException"),
        ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
        (
            {"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"},
            "InvalidDeploymentConfigNameException",
        ),
        (
            {
                "onPremisesInstanceTagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
                "onPremisesTagSet": {"onPremisesTagSetList": [[{"Key": "b", "Type": "KEY_ONLY"}]]},
            },
            "InvalidOnPremisesTagCombinationException",
        ),
        (
            {
                "ec2TagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
                "ec2TagSet": {"ec2TagSetList": [[{"Key": "b", "Type": "KEY_ONLY"}]]},
            },
            "InvalidEC2TagCombinationException",
        ),
        (
            {"onPremisesTagSet": {"onPremisesTagSetList": [[{"Key": "k"}]] * 4}},
            "TagSetListLimitExceededException",
        ),
        (
            {"onPremisesInstanceTagFilters": [{"Type": "KEY_AND_VALUE", "Key": "k"}]},
            "InvalidTagException",
        ),
        ({"ec2TagFilters": [{"Type": "VALUE_ONLY", "Key": "k"}]}, "InvalidEC2TagException"),
        (
            {"alarmConfiguration": {"alarms": [{"name": f"a{i}"} for i in range(11)]}},
            "AlarmsLimitExceededException",
        ),
        ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
        (
            {"alarmConfiguration": {"alarms": [{"name": "x"}, {"name": "x"}]}},
            "InvalidAlarmConfigException",
        ),
        (
            {
                "triggerConfigurations": [
                    {"triggerName": f"t{i}", "triggerTargetArn": "arn", "triggerEvents": []}
                    for i in range(11)
                ]
            },
            "TriggerTargetsLimitExceededException",
        ),
        (
            {
                "triggerConfigurations": [
                    {"triggerName": "t", "triggerTargetArn": "arn", "triggerEvents": ["Bogus"]}
                ]
            },
            "InvalidTriggerConfigException",
        ),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": []}},
            "InvalidAutoRollbackConfigException",
        ),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": ["WHENEVER"]}},
            "InvalidAutoRollbackConfigException",
        ),
        ({"outdatedInstancesStrategy": "SOMETIMES"}, "InvalidInputException"),
        ({"deploymentStyle": {"deploymentType": "SIDEWAYS"}}, "InvalidDeploymentStyleException"),
        (
            {
                "deploymentStyle": {
                    "deploymentType": "IN_PLACE",
                    "deploymentOption": "WITH_TRAFFIC_CONTROL",
                }
            },
            "InvalidLoadBalancerInfoException",
        ),
        (
            {
                "blueGreenDeploymentConfiguration": {
                    "terminateBlueInstancesOnDeploymentSuccess": {
                        "terminationWaitTimeInMinutes": 2881
                    }
                }
            },
            "InvalidBlueGreenDeploymentConfigurationException",
        ),
        (
            {"loadBalancerInfo": {"elbInfoList": [{"name": f"lb{i}"} for i in range(11)]}},
            "InvalidLoadBalancerInfoException",
        ),
        (
            {"loadBalancerInfo": {"targetGroupPairInfoList": [{"targetGroups": [{"name": "a"}]}]}},
            "InvalidTargetGroupPairException",
        ),
        (
            {"ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["Launch"]}},
            "InvalidAutoScalingGroupProcessToSuspendException",
        ),
        ({"tags": [{"Key": ""}]}, "InvalidTagsToAddException"),
    ]
    for overrides, expected in cases:
        request = {
            "applicationName": app,
            "deploymentGroupName": unique("g"),
            "serviceRoleArn": ROLE_ARN,
            **overrides,
        }
        assert raw_error(server, "CreateDeploymentGroup", request) == expected, overrides


def test_required_members_raw(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    assert raw_error(
        server, "CreateDeploymentGroup", {"applicationName": app, "deploymentGroupName": "g"}
    ) == ("RoleRequiredException")
    assert raw_error(
        server, "CreateDeploymentGroup", {"applicationName": app, "serviceRoleArn": ROLE_ARN}
    ) == ("DeploymentGroupNameRequiredException")
    assert raw_error(
        server,
        "CreateDeploymentGroup",
        {
            "applicationName": app,
            "deploymentGroupName": "g",
            "serviceRoleArn": ROLE_ARN,
            "terminationHookEnabled": "yes",
        },
    ) == ("InvalidInputException")
    assert raw_error(server, "BatchGetDeploymentGroups", {"applicationName": app}) == (
        "DeploymentGroupNameRequiredException"
    )


def test_get_batch_get_and_list(cd: Any) -> None:
    app = new_app(cd)
    for name in ("b", "a", "c"):
        create(cd, app, name)
    assert error_code(cd.get_deployment_group, applicationName=app, deploymentGroupName="zz") == (
        "DeploymentGroupDoesNotExistException"
    )
    found = cd.batch_get_deployment_groups(applicationName=app, deploymentGroupNames=["a", "zz"])
    assert [g["deploymentGroupName"] for g in found["deploymentGroupsInfo"]] == ["a"]
    assert "zz" in found["errorMessage"]
    listed = cd.list_deployment_groups(applicationName=app)
    assert listed["applicationName"] == app
    assert listed["deploymentGroups"] == ["a", "b", "c"]
    assert error_code(cd.list_deployment_groups, applicationName=unique("missing")) == (
        "ApplicationDoesNotExistException"
    )


def test_update_changes_given_members_and_renames(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    group_id = create(cd, app, "old", tags=[{"Key": "k", "Value": "v"}])
    result = cd.update_deployment_group(
        applicationName=app,
        currentDeploymentGroupName="old",
        newDeploymentGroupName="new",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    assert result["hooksNotCleanedUp"] == []
    got = info(cd, app, "new")
    assert got["deploymentGroupId"] == group_id
    assert got["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert got["onPremisesInstanceTagFilters"][0]["Key"] == "role"
    assert got["serviceRoleArn"] == ROLE_ARN  # untouched
    assert error_code(cd.get_deployment_group, applicationName=app, deploymentGroupName="old") == (
        "DeploymentGroupDoesNotExistException"
    )
    arn = f"arn:aws:codedeploy:{server.region}:000000000000:deploymentgroup:{app}/new"
    assert cd.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    # Switching to a tag set needs the filters cleared in the same call.
    tag_set = {"onPremisesTagSetList": [[{"Key": "role", "Type": "KEY_ONLY"}]]}
    assert error_code(
        cd.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName="new",
        onPremisesTagSet=tag_set,
    ) == ("InvalidOnPremisesTagCombinationException")
    cd.update_deployment_group(
        applicationName=app,
        currentDeploymentGroupName="new",
        onPremisesTagSet=tag_set,
        onPremisesInstanceTagFilters=[],
    )
    assert info(cd, app, "new")["onPremisesTagSet"] == tag_set


def test_update_errors(cd: Any) -> None:
    app = new_app(cd)
    create(cd, app, "one")
    create(cd, app, "two")
    assert error_code(
        cd.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName="one",
        newDeploymentGroupName="two",
    ) == ("DeploymentGroupAlreadyExistsException")
    assert error_code(
        cd.update_deployment_group, applicationName=app, currentDeploymentGroupName="three"
    ) == ("DeploymentGroupDoesNotExistException")
    assert error_code(
        cd.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName="one",
        serviceRoleArn="arn:aws:iam::000000000000:user/bob",
    ) == ("InvalidRoleException")
    assert error_code(
        cd.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName="one",
        deploymentConfigName="Nope",
    ) == ("DeploymentConfigDoesNotExistException")


def test_delete(cd: Any) -> None:
    app = new_app(cd)
    create(cd, app)
    result = cd.delete_deployment_group(applicationName=app, deploymentGroupName="g")
    assert result["hooksNotCleanedUp"] == []
    assert cd.list_deployment_groups(applicationName=app)["deploymentGroups"] == []
    # Deleting what is not there succeeds: the model has no error for it.
    cd.delete_deployment_group(applicationName=app, deploymentGroupName="g")


def test_ecs_group_needs_a_service(cd: Any) -> None:
    """The rest of an ECS group is checked against its container backend
    (tests/server/test_ecs_moto.py)."""
    app = new_app(cd, "ECS")
    assert error_code(
        cd.create_deployment_group,
        applicationName=app,
        deploymentGroupName="no-service",
        serviceRoleArn=ROLE_ARN,
    ) == ("InvalidECSServiceException")


def test_aws_cli_create_deployment_group(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    created = aws_cli(
        server,
        "create-deployment-group",
        "--application-name",
        app,
        "--deployment-group-name",
        "cli-group",
        "--service-role-arn",
        ROLE_ARN,
        "--on-premises-instance-tag-filters",
        "Key=role,Value=web,Type=KEY_AND_VALUE",
    )
    got = info(cd, app, "cli-group")
    assert got["deploymentGroupId"] == created["deploymentGroupId"]
    assert got["onPremisesInstanceTagFilters"] == [
        {"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}
    ]
