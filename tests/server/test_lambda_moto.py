"""Lambda deployments on the AWS path: the server's functions_backend "aws" pointed at
moto's server, a second, independent implementation of the Lambda API, on loopback.
Functions, versions and aliases are created there; a canary moves the alias's weights
on schedule (observed with GetAlias while it runs) and ends with the target version at
100 %. Bad appspecs are refused at CreateDeployment with nothing stored. (moto cannot
run functions here, so these deployments have no hooks.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.conftest import LiveServer, start_live_server
from tests.lambda_support import appspec, create_group, lambda_info, revision, weight_on, zipped
from tests.moto_support import moto_endpoint
from tests.support import call_extension, raw_call, wait_until

APP = "orders-fn"
MINUTE = 0.3


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    yield from moto_endpoint()


@pytest.fixture(scope="module")
def lam(moto_url: str) -> Any:
    """moto's Lambda, with function ``orders`` (versions 1, 2, 3) and alias ``live`` on 1."""
    options = {"endpoint_url": moto_url, "region_name": "us-east-1", **_keys()}
    role = boto3.client("iam", **options).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    client = boto3.client("lambda", **options)
    for name in ("orders", "canary", "linear", "rollback"):
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": "def handler(e, c):\n    return 1\n"})},
        )
        for number in range(1, 4):  # Lambda publishes a version only for changed code
            code = zipped({"app.py": f"def handler(e, c):\n    return {number}\n"})
            client.update_function_code(FunctionName=name, ZipFile=code)
            client.publish_version(FunctionName=name)
        client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    return client


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "moto", "aws_secret_access_key": "moto"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("lambda-moto") / "server",
        minute_seconds=MINUTE,
        functions_backend="aws",
        functions_endpoint=moto_url,
        functions_region="us-east-1",
    )


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Lambda")
    create_group(client, APP, "canary", "CodeDeployDefault.LambdaCanary10Percent5Minutes")
    create_group(client, APP, "linear", "CodeDeployDefault.LambdaLinear10PercentEvery1Minute")
    create_group(client, APP, "checks", "CodeDeployDefault.LambdaAllAtOnce")
    create_group(client, APP, "rollback", "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    return client


def _deploy(cd: Any, group: str, content: str) -> str:
    answer = cd.create_deployment(
        applicationName=APP, deploymentGroupName=group, revision=revision(content)
    )
    return str(answer["deploymentId"])


def _status(cd: Any, deployment_id: str) -> str:
    return str(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])


def test_a_canary_moves_the_alias_on_schedule_and_ends_on_the_target(cd: Any, lam: Any) -> None:
    deployment_id = _deploy(cd, "canary", appspec("canary", "live", "1", "2"))

    # The canary's 10 % is in force for 5 scaled minutes (1.5 s): GetAlias shows it.
    wait_until(lambda: weight_on(lam, "canary", "live", "2") == 10, "the 10 % canary on moto")
    info = lambda_info(cd, deployment_id, "canary:live")
    assert info["lambdaFunctionInfo"] == {
        "functionName": "canary",
        "functionAlias": "live",
        "currentVersion": "1",
        "targetVersion": "2",
        "targetVersionWeight": 10.0,
    }
    assert lam.get_alias(FunctionName="canary", Name="live")["FunctionVersion"] == "1"

    wait_until(lambda: _status(cd, deployment_id) == "Succeeded", "the canary to succeed")
    alias = lam.get_alias(FunctionName="canary", Name="live")
    assert alias["FunctionVersion"] == "2"
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    deployment = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert deployment["computePlatform"] == "Lambda"
    assert deployment["deploymentOverview"]["Succeeded"] == 1
    events = lambda_info(cd, deployment_id, "canary:live")["lifecycleEvents"]
    assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ]
    listed = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert listed == ["canary:live"]
    (batch,) = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=listed)[
        "deploymentTargets"
    ]
    assert batch["deploymentTargetType"] == "LambdaTarget"
    assert batch["lambdaTarget"]["targetArn"].endswith(":function:canary:live")
    assert batch["lambdaTarget"]["lambdaFunctionInfo"]["targetVersionWeight"] == 100.0


def test_a_linear_shift_passes_through_each_step(cd: Any, lam: Any) -> None:
    deployment_id = _deploy(cd, "linear", appspec("linear", "live", "1", "3"))
    seen: set[int] = set()

    def done() -> bool:
        seen.add(weight_on(lam, "linear", "live", "3"))
        return _status(cd, deployment_id) == "Succeeded"

    wait_until(done, "the linear shift to succeed", every=0.02)

    # Every step lasts 0.3 s; polling every 20 ms sees most of them (and 100 at the end).
    assert 100 in seen
    assert len(seen & {10, 20, 30, 40, 50, 60, 70, 80, 90}) >= 5, seen


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (appspec("missing", "live", "1", "2"), "function missing has no published version 1"),
        (appspec("orders", "live", "1", "9"), "function orders has no published version 9"),
        (appspec("orders", "prod", "1", "2"), "function orders has no alias prod"),
        (
            appspec("orders", "live", "2", "3"),
            "CurrentVersion is 2 but alias orders:live points at version 1",
        ),
        (appspec("orders", "live", "1", "1"), "TargetVersion must differ from CurrentVersion"),
        ("version: 0.0\nResources: {}\n", "Resources must be a list of exactly one resource"),
        ("version: [", "not valid YAML or JSON"),
    ],
)
def test_a_bad_appspec_is_refused_and_nothing_is_stored(
    server: LiveServer, cd: Any, lam: Any, content: str, words: str
) -> None:
    body = {"applicationName": APP, "deploymentGroupName": "checks", "revision": revision(content)}

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, "InvalidRevisionException"), answer
    assert words in answer["message"]
    assert (
        cd.list_deployments(applicationName=APP, deploymentGroupName="checks")["deployments"] == []
    )
    assert lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "1"


def test_a_sha256_that_does_not_match_the_content_is_refused(server: LiveServer, cd: Any) -> None:
    content = appspec("orders", "live", "1", "2")
    body = {
        "applicationName": APP,
        "deploymentGroupName": "checks",
        "revision": revision(content, sha256="0" * 64),
    }

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, "InvalidRevisionException")
    assert "sha256 does not match the content" in answer["message"]
    assert (
        cd.list_deployments(applicationName=APP, deploymentGroupName="checks")["deployments"] == []
    )


def test_a_server_deployments_config_is_refused_for_a_lambda_group(
    server: LiveServer, cd: Any
) -> None:
    body = {
        "applicationName": APP,
        "deploymentGroupName": "checks",
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "revision": revision(appspec("orders", "live", "1", "2")),
    }

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, "InvalidDeploymentConfigNameException")


def test_an_s3_appspec_from_the_bundle_store_deploys(server: LiveServer, cd: Any, lam: Any) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="appspecs")
    body = appspec("orders", "live", "1", "3").encode()
    s3.put_object(Bucket="appspecs", Key="orders/appspec.yml", Body=body)
    location = {"bucket": "appspecs", "key": "orders/appspec.yml", "bundleType": "YAML"}

    deployment_id = cd.create_deployment(
        applicationName=APP,
        deploymentGroupName="checks",
        revision={"revisionType": "S3", "s3Location": location},
    )["deploymentId"]

    wait_until(lambda: _status(cd, deployment_id) == "Succeeded", "the S3 deployment")
    assert lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"] == "3"
    missing = {**location, "key": "orders/none.yml"}
    status, answer = raw_call(
        server,
        "CreateDeployment",
        {
            "applicationName": APP,
            "deploymentGroupName": "checks",
            "revision": {"revisionType": "S3", "s3Location": missing},
        },
    )
    assert (status, answer["__type"]) == (400, "RevisionDoesNotExistException")
    assert "No appspec at s3://appspecs/orders/none.yml" in answer["message"]


@pytest.mark.parametrize("emergency", [False, True])
def test_shipyard_rollback_shifts_a_running_canary_back(
    server: LiveServer, cd: Any, lam: Any, emergency: bool
) -> None:
    deployment_id = _deploy(cd, "rollback", appspec("rollback", "live", "1", "2"))
    wait_until(lambda: weight_on(lam, "rollback", "live", "2") == 10, "the canary on moto")

    answer = call_extension(
        server,
        "ShipyardRollback",
        {"applicationName": APP, "deploymentGroupName": "rollback", "emergency": emergency},
    )

    assert answer == {
        "stoppedDeploymentId": deployment_id,
        "rollbackMessage": (
            "Rolled back: all traffic of rollback:live shifted back to the original version."
        ),
    }
    assert _status(cd, deployment_id) == "Stopped"
    wait_until(lambda: weight_on(lam, "rollback", "live", "2") == 0, "the shift back on moto")
    assert lam.get_alias(FunctionName="rollback", Name="live")["FunctionVersion"] == "1"
