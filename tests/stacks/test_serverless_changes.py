"""The serverless transform (what SAM emits for AutoPublishAlias and
DeploymentPreference) and change sets computed from two templates."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.stacks.changes import Change, definitions, diff
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.parameters import pseudo_values
from shipyard.stacks.template import load

PSEUDO = pseudo_values("us-east-1", "123456789012", "orders", "arn:stack/orders/1")

SAM = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Build: {{Type: String, Default: "1"}}
Resources:
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://code/{key}
      Handler: app.handler
      Runtime: python3.11
      Environment: {{Variables: {{BUILD: !Ref Build}}}}
      AutoPublishAlias: live{extra}
"""
PREFERENCE = """
      DeploymentPreference:
        Type: Canary10Percent5Minutes
        Alarms: [api-errors]
        Hooks: {PreTraffic: !Ref Check}"""


def resources(key: str, extra: str = PREFERENCE) -> dict[str, Any]:
    return load(SAM.format(key=key, extra=extra)).resources


def test_sam_function_with_a_deployment_preference() -> None:
    found = resources("v1.zip")
    version_id = next(name for name in found if name.startswith("ApiVersion"))
    assert len(version_id) == len("ApiVersion") + 10
    assert sorted(found) == sorted(
        ["Api", version_id, "ApiAliaslive", "ServerlessDeploymentApplication", "ApiDeploymentGroup"]
    )
    assert found["Api"]["Properties"]["Code"] == {"S3Bucket": "code", "S3Key": "v1.zip"}
    assert found[version_id]["DeletionPolicy"] == "Retain"
    alias = found["ApiAliaslive"]
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"] == {
        "ApplicationName": {"Ref": "ServerlessDeploymentApplication"},
        "DeploymentGroupName": {"Ref": "ApiDeploymentGroup"},
        "BeforeAllowTrafficHook": {"Ref": "Check"},
    }
    group = found["ApiDeploymentGroup"]["Properties"]
    assert group["AlarmConfiguration"] == {"Enabled": True, "Alarms": [{"Name": "api-errors"}]}
    assert group["DeploymentConfigName"]["Fn::Sub"][1] == {"ConfigName": "Canary10Percent5Minutes"}


def test_the_version_id_follows_the_code() -> None:
    def version_of(key: str) -> str:
        return next(name for name in resources(key, "") if name.startswith("ApiVersion"))

    assert version_of("v1.zip") == version_of("v1.zip")
    assert version_of("v1.zip") != version_of("v2.zip")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("\n      DeploymentPreference: {Type: AllAtOnce}", ""),
        ("\n      DeploymentPreference: {Hooks: {}}", "missing required Property 'Type'"),
        ("\n      Events: {Api: {Type: Api}}", "Events are not supported"),
    ],
)
def test_sam_refusals(extra: str, message: str) -> None:
    body = SAM.format(key="k", extra=extra)
    if not message:
        assert "ApiDeploymentGroup" in load(body).resources
        return
    with pytest.raises(TemplateError, match=message):
        load(body)


def test_a_local_code_uri_must_be_packaged_first() -> None:
    with pytest.raises(TemplateError, match="shipyard stack deploy packages a local path"):
        load(SAM.replace("s3://code/{key}", "./src").format(extra=""))


def _definitions(key: str, build: str = "1") -> dict[str, Any]:
    return definitions(load(SAM.format(key=key, extra="")), {**PSEUDO, "Build": build})


def test_change_set_for_new_code() -> None:
    old, new = _definitions("v1.zip"), _definitions("v2.zip")
    (old_version,) = (n for n in old if n.startswith("ApiVersion"))
    (new_version,) = (n for n in new if n.startswith("ApiVersion"))
    assert diff(old, new) == [
        Change("Modify", "Api", "AWS::Lambda::Function", "False", ("Properties",), ("Code",)),
        Change("Add", new_version, "AWS::Lambda::Version"),
        Change(
            "Modify",
            "ApiAliaslive",
            "AWS::Lambda::Alias",
            "False",
            ("Properties",),
            ("FunctionVersion",),
        ),
        Change("Remove", old_version, "AWS::Lambda::Version"),
    ]


def test_no_changes_and_a_renamed_function() -> None:
    assert diff(_definitions("v1.zip"), _definitions("v1.zip")) == []
    body = SAM.format(key="k", extra="")
    old = definitions(load(body), PSEUDO | {"Build": "1"})
    renamed = definitions(
        load(body.replace("Handler:", "FunctionName: other\n      Handler:")),
        PSEUDO | {"Build": "1"},
    )
    changes = {change.logical_id: change for change in diff(old, renamed)}
    assert changes["Api"].replacement == "True"
    # The version refers to the replaced function by Ref: it follows, conditionally.
    version_change = next(c for name, c in changes.items() if name.startswith("ApiVersion"))
    assert (version_change.replacement, version_change.caused_by) == ("Conditional", ("Api",))


def test_a_parameter_in_the_environment_publishes_a_new_version() -> None:
    body = SAM.format(key="k", extra="")

    def version_with(build: str) -> str:
        found = load(body, {**PSEUDO, "Build": build}).resources
        return next(name for name in found if name.startswith("ApiVersion"))

    assert version_with("1") == version_with("1")
    assert version_with("1") != version_with("2")
    # Without values, the defaults are in force.
    assert next(n for n in load(body).resources if n.startswith("ApiVersion")) == version_with("1")
