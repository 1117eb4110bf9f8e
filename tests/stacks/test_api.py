"""The CloudFormation API with boto3 against a live server: stacks created, updated,
rolled back and deleted for real (Lambda functions, versions and aliases, CodeDeploy
applications and groups on the same server), change sets, and the API's refusals."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, on_both_databases
from tests.stacks.conftest import ROLE, SOURCE, events, outputs, settled
from tests.support import call_extension

pytestmark = pytest.mark.e2e


TEMPLATE = """\
Description: stack API test
Parameters:
  Build: {Type: String, Default: "1"}
  Stage: {Type: String, Default: test, AllowedValues: [test, prod]}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  App:
    Type: AWS::CodeDeploy::Application
    Properties: {ComputePlatform: Lambda}
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: ROLE
      Environment: {Variables: {BUILD: !Ref Build, STAGE: !If [IsProd, p, t]}}
      Code:
        ZipFile: |
CODE
  V1:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn}
  Live:
    Type: AWS::Lambda::Alias
    Properties: {Name: live, FunctionName: !Ref Fn, FunctionVersion: !GetAtt V1.Version}
"""
GROUP = """\
  Group:
    Type: AWS::CodeDeploy::DeploymentGroup
    Properties:
      ApplicationName: !Ref App
      ServiceRoleArn: ROLE
      DeploymentConfigName: CONFIG
      DeploymentStyle: {DeploymentType: BLUE_GREEN, DeploymentOption: WITH_TRAFFIC_CONTROL}
"""
OUTPUTS = """\
Outputs:
  Function: {Value: !Ref Fn}
  Alias: {Value: !Ref Live, Description: the live alias}
  Version: {Value: !GetAtt V1.Version}
"""


def template(build: str = "1", group_config: str = "") -> str:
    """A function with inline code, a version, an alias, a CodeDeploy application; with
    ``group_config`` also a deployment group using that config. ``build`` is the
    default of the Build parameter."""
    body = TEMPLATE.replace('Default: "1"', f'Default: "{build}"')
    body = body.replace("CODE\n", textwrap.indent(SOURCE, " " * 10))
    if group_config:
        body += GROUP.replace("CONFIG", group_config)
    return (body + OUTPUTS).replace("ROLE", ROLE)


def invoke(server: LiveServer, arn: str) -> dict[str, Any]:
    answer = server.client("lambda").invoke(FunctionName=arn, Payload=b"{}")
    return dict(json.loads(answer["Payload"].read()))


def test_create_update_and_delete_a_stack(server: LiveServer, cfn: Any) -> None:
    cfn.create_stack(StackName="api", TemplateBody=template())
    stack = settled(cfn, "api")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Description"] == "stack API test"
    found = outputs(stack)
    assert found["Version"] == "1"
    assert invoke(server, found["Alias"]) == {"build": "1", "version": "1"}
    assert [e[:2] for e in events(cfn, "api")] == [
        ("api", "CREATE_IN_PROGRESS"),
        ("App", "CREATE_IN_PROGRESS"),
        ("App", "CREATE_COMPLETE"),
        ("Fn", "CREATE_IN_PROGRESS"),
        ("Fn", "CREATE_COMPLETE"),
        ("V1", "CREATE_IN_PROGRESS"),
        ("V1", "CREATE_COMPLETE"),
        ("Live", "CREATE_IN_PROGRESS"),
        ("Live", "CREATE_COMPLETE"),
        ("api", "CREATE_COMPLETE"),
    ]
    resources = cfn.describe_stack_resources(StackName="api")["StackResources"]
    assert {r["LogicalResourceId"]: r["ResourceStatus"] for r in resources} == {
        "App": "CREATE_COMPLETE",
        "Fn": "CREATE_COMPLETE",
        "V1": "CREATE_COMPLETE",
        "Live": "CREATE_COMPLETE",
    }
    app_name = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "App")
    codedeploy = server.client("codedeploy")
    assert (
        codedeploy.get_application(applicationName=app_name)["application"]["computePlatform"]
        == "Lambda"
    )

    # A parameter change updates the function in place; the stage condition flips.
    cfn.update_stack(
        StackName="api",
        UsePreviousTemplate=True,
        Parameters=[
            {"ParameterKey": "Build", "ParameterValue": "2"},
            {"ParameterKey": "Stage", "UsePreviousValue": True},
        ],
    )
    stack = settled(cfn, "api")
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    config = server.client("lambda").get_function_configuration(
        FunctionName=outputs(stack)["Function"]
    )
    assert config["Environment"]["Variables"] == {"BUILD": "2", "STAGE": "t"}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Build": "2",
        "Stage": "test",
    }

    with pytest.raises(ClientError, match=r"No updates are to be performed\."):
        cfn.update_stack(
            StackName="api",
            UsePreviousTemplate=True,
            Parameters=[
                {"ParameterKey": "Build", "UsePreviousValue": True},
            ],
        )

    cfn.delete_stack(StackName="api")
    cfn.get_waiter("stack_delete_complete").wait(
        StackName="api", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    with pytest.raises(ClientError, match="ApplicationDoesNotExist"):
        codedeploy.get_application(applicationName=app_name)
    with pytest.raises(ClientError, match="Stack with id api does not exist"):
        cfn.describe_stacks(StackName="api")
    deleted = cfn.describe_stacks(StackName=stack["StackId"])["Stacks"][0]
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    assert "DeletionTime" in deleted


def test_a_failed_update_rolls_back(server: LiveServer, cfn: Any) -> None:
    cfn.create_stack(StackName="rollback", TemplateBody=template())
    stack = settled(cfn, "rollback")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    function = outputs(stack)["Function"]
    # The function is changed first, then the group fails: no such deployment config.
    cfn.update_stack(StackName="rollback", TemplateBody=template("2", group_config="NoSuchConfig"))
    stack = settled(cfn, "rollback")
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert stack["StackStatusReason"] == "The following resource(s) failed to update: [Group]."
    happened = events(cfn, "rollback")
    failed = [e for e in happened if e[1] == "CREATE_FAILED"]
    assert failed and failed[0][0] == "Group" and "NoSuchConfig" in failed[0][2]
    config = server.client("lambda").get_function_configuration(FunctionName=function)
    assert config["Environment"]["Variables"]["BUILD"] == "1"
    assert sorted(
        r["LogicalResourceId"]
        for r in cfn.describe_stack_resources(StackName="rollback")["StackResources"]
    ) == ["App", "Fn", "Live", "V1"]
    statuses = [e[1] for e in happened if e[0] == "rollback"]
    assert statuses[-3:] == [
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    # After a rollback the stack can be updated again.
    cfn.update_stack(StackName="rollback", TemplateBody=template("3"))
    assert settled(cfn, "rollback")["StackStatus"] == "UPDATE_COMPLETE"


def test_change_sets(server: LiveServer, cfn: Any) -> None:
    created = cfn.create_change_set(
        StackName="changes", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=template()
    )
    assert (
        cfn.describe_stacks(StackName="changes")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"
    )
    described = cfn.describe_change_set(ChangeSetName=created["Id"], StackName="changes")
    assert (described["Status"], described["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")
    assert [
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in described["Changes"]
    ] == [
        ("Add", "App"),
        ("Add", "Fn"),
        ("Add", "V1"),
        ("Add", "Live"),
    ]
    cfn.execute_change_set(ChangeSetName="first", StackName="changes")
    cfn.get_waiter("stack_create_complete").wait(
        StackName="changes", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    assert (
        cfn.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"]
        == "EXECUTE_COMPLETE"
    )

    empty = cfn.create_change_set(
        StackName="changes", ChangeSetName="same", TemplateBody=template()
    )
    described = cfn.describe_change_set(ChangeSetName=empty["Id"])
    assert described["Status"] == "FAILED"
    assert "didn't contain changes" in described["StatusReason"]
    with pytest.raises(ClientError, match="InvalidChangeSetStatus"):
        cfn.execute_change_set(ChangeSetName=empty["Id"])
    cfn.delete_change_set(ChangeSetName="same", StackName="changes")
    with pytest.raises(ClientError) as refused:
        cfn.describe_change_set(ChangeSetName="same", StackName="changes")
    assert refused.value.response["Error"]["Code"] == "ChangeSetNotFound"

    update = cfn.create_change_set(
        StackName="changes", ChangeSetName="second", TemplateBody=template("2")
    )
    changes = cfn.describe_change_set(ChangeSetName=update["Id"])["Changes"]
    assert [c["ResourceChange"] | {"Details": None} for c in changes] == [
        {
            "Action": "Modify",
            "LogicalResourceId": "Fn",
            "PhysicalResourceId": cfn.describe_stack_resources(
                StackName="changes", LogicalResourceId="Fn"
            )["StackResources"][0]["PhysicalResourceId"],
            "ResourceType": "AWS::Lambda::Function",
            "Replacement": "False",
            "Scope": ["Properties"],
            "Details": None,
        }
    ]
    assert changes[0]["ResourceChange"]["Details"][0]["Target"]["Name"] == "Environment"
    cfn.execute_change_set(ChangeSetName=update["Id"])
    cfn.get_waiter("stack_update_complete").wait(
        StackName="changes", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    listed = cfn.list_change_sets(StackName="changes")["Summaries"]
    assert {s["ChangeSetName"]: s["ExecutionStatus"] for s in listed} == {
        "first": "OBSOLETE",
        "second": "EXECUTE_COMPLETE",
    }


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        (
            lambda c: c.describe_stacks(StackName="ghost"),
            "ValidationError",
            "Stack with id ghost does not exist",
        ),
        (
            lambda c: c.create_stack(
                StackName="bad", TemplateBody="Resources:\n  X:\n    Type: AWS::Nope::Thing\n"
            ),
            "ValidationError",
            "Template format error: Unrecognized resource types: [AWS::Nope::Thing]",
        ),
        (
            lambda c: c.validate_template(
                TemplateBody=template().replace("!Ref Fn}", "!Ref Ghost}")
            ),
            "ValidationError",
            "Template format error: Unresolved resource dependencies [Ghost] in the Resources "
            "block of the template",
        ),
        (
            lambda c: c.create_stack(
                StackName="bad",
                TemplateBody=template(),
                Parameters=[{"ParameterKey": "Stage", "ParameterValue": "dev"}],
            ),
            "ValidationError",
            "Parameter 'Stage' must be one of AllowedValues",
        ),
        (
            lambda c: c.create_stack(StackName="9lives", TemplateBody=template()),
            "ValidationError",
            "regular expression pattern",
        ),
        (
            lambda c: c.update_stack(StackName="ghost", TemplateBody=template()),
            "ValidationError",
            "Stack with id ghost does not exist",
        ),
        (
            lambda c: c.describe_change_set(ChangeSetName="nope", StackName="ghost"),
            "ChangeSetNotFound",
            "ChangeSet [nope] does not exist",
        ),
    ],
)
def test_refusals(cfn: Any, call: Any, code: str, message: str) -> None:
    with pytest.raises(ClientError) as refused:
        call(cfn)
    assert refused.value.response["Error"]["Code"] == code
    assert message in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName="bad")


def test_an_existing_stack_is_not_created_twice(cfn: Any) -> None:
    cfn.create_stack(StackName="twice", TemplateBody=template())
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName="twice", TemplateBody=template())
    assert refused.value.response["Error"]["Code"] == "AlreadyExistsException"
    assert settled(cfn, "twice")["StackStatus"] == "CREATE_COMPLETE"
    summary = cfn.get_template_summary(StackName="twice")
    assert [p["ParameterKey"] for p in summary["Parameters"]] == ["Build", "Stage"]
    assert "AWS::Lambda::Alias" in summary["ResourceTypes"]
    assert cfn.get_template(StackName="twice")["TemplateBody"] == template()


def test_viewers_read_and_may_not_change(server: LiveServer, cfn: Any) -> None:
    key = call_extension(server, "ShipyardCreateUser", {"userName": "ann", "role": "viewer"})
    viewer = boto3.client(
        "cloudformation",
        endpoint_url=server.url,
        region_name=server.region,
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=key["secretAccessKey"],
    )
    viewer.list_stacks()
    with pytest.raises(ClientError) as refused:
        viewer.create_stack(StackName="nope", TemplateBody=template())
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


@on_both_databases
def test_create_roll_back_and_delete_on_both_databases(live_server: LiveServer) -> None:
    cfn = live_server.client("cloudformation")
    cfn.create_stack(StackName="stored", TemplateBody=template())
    assert settled(cfn, "stored")["StackStatus"] == "CREATE_COMPLETE"
    cfn.update_stack(StackName="stored", TemplateBody=template("2", group_config="NoSuchConfig"))
    assert settled(cfn, "stored")["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    stack_id = cfn.describe_stacks(StackName="stored")["Stacks"][0]["StackId"]
    cfn.delete_stack(StackName="stored")
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack_id, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    statuses = [e[1] for e in events(cfn, stack_id) if e[0] == "stored"]
    assert statuses[-2:] == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]
