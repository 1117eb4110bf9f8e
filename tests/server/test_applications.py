"""Applications through boto3, raw JSON and the AWS CLI, against a live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import LiveServer, start_live_server
from tests.server.crud_support import ROLE_ARN, aws_cli, error_code, raw_error, unique


def test_create_get_and_batch_get(cd: Any) -> None:
    name = unique("app")
    app_id = cd.create_application(applicationName=name)["applicationId"]
    info = cd.get_application(applicationName=name)["application"]
    assert info["applicationId"] == app_id
    assert info["applicationName"] == name
    assert info["computePlatform"] == "Server"
    assert info["linkedToGitHub"] is False
    assert info["createTime"].timestamp() > 0
    other = unique("app")
    cd.create_application(applicationName=other, computePlatform="Lambda")
    found = cd.batch_get_applications(applicationNames=[name, other])["applicationsInfo"]
    assert [(a["applicationName"], a["computePlatform"]) for a in found] == [
        (name, "Server"),
        (other, "Lambda"),
    ]


def test_create_rejects_duplicates_bad_names_and_platforms(cd: Any) -> None:
    name = unique("app")
    cd.create_application(applicationName=name)
    assert error_code(cd.create_application, applicationName=name) == (
        "ApplicationAlreadyExistsException"
    )
    assert error_code(cd.create_application, applicationName="bad name!") == (
        "InvalidApplicationNameException"
    )
    assert error_code(cd.create_application, applicationName="x" * 101) == (
        "InvalidApplicationNameException"
    )
    assert error_code(
        cd.create_application, applicationName=unique("app"), computePlatform="Mainframe"
    ) == ("InvalidComputePlatformException")
    assert error_code(
        cd.create_application, applicationName=unique("app"), tags=[{"Key": "k" * 129}]
    ) == ("InvalidTagsToAddException")


def test_raw_json_missing_and_mistyped_members(server: LiveServer) -> None:
    assert raw_error(server, "CreateApplication", {}) == "ApplicationNameRequiredException"
    assert raw_error(server, "CreateApplication", {"applicationName": 7}) == (
        "InvalidApplicationNameException"
    )
    assert raw_error(server, "GetApplication", {"applicationName": ""}) == (
        "ApplicationNameRequiredException"
    )
    assert raw_error(server, "BatchGetApplications", {}) == "ApplicationNameRequiredException"
    assert raw_error(server, "BatchGetApplications", {"applicationNames": "app"}) == (
        "InvalidApplicationNameException"
    )
    assert raw_error(server, "UpdateApplication", {"applicationName": "a"}) == (
        "ApplicationNameRequiredException"
    )


def test_get_and_batch_get_missing(cd: Any) -> None:
    missing = unique("missing")
    assert error_code(cd.get_application, applicationName=missing) == (
        "ApplicationDoesNotExistException"
    )
    assert error_code(cd.batch_get_applications, applicationNames=[missing]) == (
        "ApplicationDoesNotExistException"
    )
    too_many = [unique("app") for _ in range(101)]
    assert error_code(cd.batch_get_applications, applicationNames=too_many) == (
        "BatchLimitExceededException"
    )
    assert cd.batch_get_applications(applicationNames=[])["applicationsInfo"] == []


def test_rename_moves_groups_revisions_and_tags(server: LiveServer, cd: Any) -> None:
    old, new = unique("app"), unique("app")
    cd.create_application(applicationName=old, tags=[{"Key": "team", "Value": "web"}])
    cd.create_deployment_group(
        applicationName=old,
        deploymentGroupName="prod",
        serviceRoleArn=ROLE_ARN,
        tags=[{"Key": "tier", "Value": "1"}],
    )
    revision = {
        "revisionType": "S3",
        "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "zip"},
    }
    cd.register_application_revision(applicationName=old, revision=revision)

    cd.update_application(applicationName=old, newApplicationName=new)

    assert error_code(cd.get_application, applicationName=old) == (
        "ApplicationDoesNotExistException"
    )
    assert cd.get_application(applicationName=new)["application"]["applicationName"] == new
    group = cd.get_deployment_group(applicationName=new, deploymentGroupName="prod")
    assert group["deploymentGroupInfo"]["applicationName"] == new
    assert cd.list_application_revisions(applicationName=new)["revisions"] == [revision]
    prefix = f"arn:aws:codedeploy:{server.region}:000000000000"
    app_tags = cd.list_tags_for_resource(ResourceArn=f"{prefix}:application:{new}")["Tags"]
    assert app_tags == [{"Key": "team", "Value": "web"}]
    group_arn = f"{prefix}:deploymentgroup:{new}/prod"
    assert cd.list_tags_for_resource(ResourceArn=group_arn)["Tags"] == [
        {"Key": "tier", "Value": "1"}
    ]


def test_rename_errors(cd: Any) -> None:
    first, second = unique("app"), unique("app")
    cd.create_application(applicationName=first)
    cd.create_application(applicationName=second)
    assert error_code(cd.update_application, applicationName=first, newApplicationName=second) == (
        "ApplicationAlreadyExistsException"
    )
    assert error_code(
        cd.update_application, applicationName=unique("missing"), newApplicationName="x"
    ) == ("ApplicationDoesNotExistException")
    cd.update_application(applicationName=first, newApplicationName=first)  # no-op
    assert cd.get_application(applicationName=first)["application"]["applicationName"] == first


def test_delete_removes_groups_and_revisions(cd: Any) -> None:
    name = unique("app")
    cd.create_application(applicationName=name)
    cd.create_deployment_group(
        applicationName=name, deploymentGroupName="g", serviceRoleArn=ROLE_ARN
    )
    cd.register_application_revision(
        applicationName=name,
        revision={"revisionType": "S3", "s3Location": {"bucket": "bkt", "key": "k.zip"}},
    )
    cd.delete_application(applicationName=name)
    assert error_code(cd.get_application, applicationName=name) == (
        "ApplicationDoesNotExistException"
    )
    # Re-creating the name starts empty: the old group and revision went with it.
    cd.create_application(applicationName=name)
    assert cd.list_deployment_groups(applicationName=name)["deploymentGroups"] == []
    assert cd.list_application_revisions(applicationName=name)["revisions"] == []
    cd.delete_application(applicationName=unique("missing"))  # deleting nothing succeeds


def test_list_applications_pages_with_boto3_paginator(tmp_path: Path) -> None:
    # A server of its own, so the count is exact.
    for live in start_live_server(tmp_path / "paging"):
        client = live.client("codedeploy")
        names = sorted(f"page-{i:03d}" for i in range(130))
        for name in names:
            client.create_application(applicationName=name)
        first = client.list_applications()
        assert len(first["applications"]) == 100
        assert "nextToken" in first
        pages = list(client.get_paginator("list_applications").paginate())
        assert [len(p["applications"]) for p in pages] == [100, 30]
        assert [n for p in pages for n in p["applications"]] == names
        assert error_code(client.list_applications, nextToken="garbage") == (
            "InvalidNextTokenException"
        )


def test_github_tokens_and_external_ids(cd: Any) -> None:
    assert cd.list_git_hub_account_token_names()["tokenNameList"] == []
    assert error_code(cd.delete_git_hub_account_token, tokenName="mine") == (
        "GitHubAccountTokenDoesNotExistException"
    )
    cd.delete_resources_by_external_id(externalId="stack-1")


def test_github_token_name_required_raw(server: LiveServer) -> None:
    assert raw_error(server, "DeleteGitHubAccountToken", {}) == (
        "GitHubAccountTokenNameRequiredException"
    )


def test_aws_cli_create_and_list(server: LiveServer) -> None:
    name = unique("cli")
    created = aws_cli(server, "create-application", "--application-name", name)
    assert created["applicationId"]
    listed = aws_cli(server, "list-applications")
    assert name in listed["applications"]
    got = aws_cli(server, "get-application", "--application-name", name)
    assert got["application"]["applicationId"] == created["applicationId"]
