"""TagResource / UntagResource / ListTagsForResource on ARNs of every taggable kind."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN, aws_cli, error_code, raw_error, unique


@pytest.fixture(scope="module")
def prefix(server: LiveServer) -> str:
    return f"arn:aws:codedeploy:{server.region}:000000000000"


def tags_of(cd: Any, arn: str) -> list[dict[str, str]]:
    return list(cd.list_tags_for_resource(ResourceArn=arn)["Tags"])


def test_application_tags_from_create_and_tag_resource(cd: Any, prefix: str) -> None:
    app = unique("app")
    cd.create_application(applicationName=app, tags=[{"Key": "team", "Value": "web"}])
    arn = f"{prefix}:application:{app}"
    assert tags_of(cd, arn) == [{"Key": "team", "Value": "web"}]
    cd.tag_resource(
        ResourceArn=arn, Tags=[{"Key": "team", "Value": "api"}, {"Key": "cost", "Value": "7"}]
    )
    assert tags_of(cd, arn) == [{"Key": "cost", "Value": "7"}, {"Key": "team", "Value": "api"}]
    cd.untag_resource(ResourceArn=arn, TagKeys=["team", "absent"])
    assert tags_of(cd, arn) == [{"Key": "cost", "Value": "7"}]


def test_group_and_config_tags(cd: Any, prefix: str) -> None:
    app = unique("app")
    cd.create_application(applicationName=app)
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName="g",
        serviceRoleArn=ROLE_ARN,
        tags=[{"Key": "a", "Value": "1"}],
    )
    group_arn = f"{prefix}:deploymentgroup:{app}/g"
    assert tags_of(cd, group_arn) == [{"Key": "a", "Value": "1"}]
    config = unique("cfg")
    cd.create_deployment_config(
        deploymentConfigName=config, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    config_arn = f"{prefix}:deploymentconfig:{config}"
    cd.tag_resource(ResourceArn=config_arn, Tags=[{"Key": "owner", "Value": "ops"}])
    assert tags_of(cd, config_arn) == [{"Key": "owner", "Value": "ops"}]
    # Deleting the resources deletes their tags: a new resource of that name starts bare.
    cd.delete_deployment_group(applicationName=app, deploymentGroupName="g")
    cd.delete_deployment_config(deploymentConfigName=config)
    assert tags_of(cd, group_arn) == []
    assert tags_of(cd, config_arn) == []


def test_missing_resources(cd: Any, prefix: str) -> None:
    tags = [{"Key": "k", "Value": "v"}]
    missing = unique("missing")
    assert error_code(
        cd.tag_resource, ResourceArn=f"{prefix}:application:{missing}", Tags=tags
    ) == ("ApplicationDoesNotExistException")
    app = unique("app")
    cd.create_application(applicationName=app)
    assert error_code(
        cd.tag_resource, ResourceArn=f"{prefix}:deploymentgroup:{app}/nope", Tags=tags
    ) == ("DeploymentGroupDoesNotExistException")
    assert error_code(
        cd.untag_resource, ResourceArn=f"{prefix}:deploymentconfig:{missing}", TagKeys=["k"]
    ) == ("DeploymentConfigDoesNotExistException")
    assert tags_of(cd, f"{prefix}:application:{missing}") == []


def test_bad_arns(server: LiveServer, cd: Any, prefix: str) -> None:
    tags = [{"Key": "k", "Value": "v"}]
    cases = {
        "not-an-arn": "InvalidArnException",
        f"{prefix}:application": "InvalidArnException",
        f"{prefix}:deploymentgroup:only-app": "InvalidArnException",
        f"{prefix}:instance/host-1": "ArnNotSupportedException",
        f"{prefix}:deploymentconfig:CodeDeployDefault.OneAtATime": "ArnNotSupportedException",
        "arn:aws:s3:::bucket/key": "ArnNotSupportedException",
        "arn:aws:codedeploy:eu-west-1:000000000000:application:x": "ArnNotSupportedException",
    }
    for arn, expected in cases.items():
        assert error_code(cd.tag_resource, ResourceArn=arn, Tags=tags) == expected, arn
    assert error_code(cd.list_tags_for_resource, ResourceArn="nope") == "InvalidArnException"


def test_tag_validation(server: LiveServer, cd: Any, prefix: str) -> None:
    app = unique("app")
    cd.create_application(applicationName=app)
    arn = f"{prefix}:application:{app}"
    assert error_code(cd.tag_resource, ResourceArn=arn, Tags=[{"Key": "k" * 129}]) == (
        "InvalidTagsToAddException"
    )
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_code(cd.tag_resource, ResourceArn=arn, Tags=many) == "InvalidTagsToAddException"
    assert raw_error(server, "TagResource", {"Tags": [{"Key": "k"}]}) == (
        "ResourceArnRequiredException"
    )
    assert raw_error(server, "TagResource", {"ResourceArn": arn}) == "TagRequiredException"
    assert raw_error(server, "UntagResource", {"ResourceArn": arn}) == "TagRequiredException"
    assert raw_error(server, "ListTagsForResource", {}) == "ResourceArnRequiredException"


def test_aws_cli_tag_resource(server: LiveServer, cd: Any, prefix: str) -> None:
    app = unique("cli")
    cd.create_application(applicationName=app)
    arn = f"{prefix}:application:{app}"
    aws_cli(server, "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=prod")
    listed = aws_cli(server, "list-tags-for-resource", "--resource-arn", arn)
    assert listed["Tags"] == [{"Key": "env", "Value": "prod"}]
