"""Bad input on the deployment and target operations gets the model's error names,
and nothing stored is disturbed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN, error_code
from tests.support import raw_call


@pytest.fixture(scope="module")
def world(server: LiveServer) -> dict[str, Any]:
    """One app, one group with one (agentless) instance, one uploaded bundle."""
    cd = server.client("codedeploy")
    s3 = server.client("s3")
    cd.create_application(applicationName="api-app")
    cd.register_on_premises_instance(
        instanceName="lonely", iamUserArn="arn:aws:iam::000000000000:user/lonely"
    )
    cd.add_tags_to_on_premises_instances(
        instanceNames=["lonely"], tags=[{"Key": "tier", "Value": "api"}]
    )
    cd.create_deployment_group(
        applicationName="api-app",
        deploymentGroupName="api",
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=[{"Key": "tier", "Value": "api", "Type": "KEY_AND_VALUE"}],
    )
    cd.create_deployment_group(
        applicationName="api-app",
        deploymentGroupName="empty",
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=[{"Key": "tier", "Value": "none", "Type": "KEY_AND_VALUE"}],
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="app.zip", Body=buffer.getvalue())
    revision = {
        "revisionType": "S3",
        "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "zip"},
    }
    return {"cd": cd, "revision": revision}


def create(world: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    request = {"applicationName": "api-app", "deploymentGroupName": "api"}
    request["revision"] = world["revision"]
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"applicationName": "nope"}, "ApplicationDoesNotExistException"),
        ({"applicationName": "bad name!"}, "InvalidApplicationNameException"),
        ({"deploymentGroupName": "nope"}, "DeploymentGroupDoesNotExistException"),
        ({"deploymentGroupName": None}, "DeploymentGroupNameRequiredException"),
        ({"revision": None}, "RevisionRequiredException"),
        (
            {
                "revision": {
                    "revisionType": "S3",
                    "s3Location": {"bucket": "bundles", "key": "none.zip", "bundleType": "zip"},
                }
            },
            "RevisionDoesNotExistException",
        ),
        (
            {
                "revision": {
                    "revisionType": "S3",
                    "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "YAML"},
                }
            },
            "InvalidRevisionException",
        ),
        (
            {"revision": {"revisionType": "String", "string": {"content": "x"}}},
            "InvalidRevisionException",
        ),
        (
            {
                "revision": {
                    "revisionType": "GitHub",
                    "gitHubLocation": {"repository": "noslash", "commitId": "abc"},
                }
            },
            "InvalidRevisionException",
        ),
        ({"deploymentConfigName": "NoSuchConfig"}, "DeploymentConfigDoesNotExistException"),
        (
            {"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"},
            "InvalidDeploymentConfigNameException",
        ),
        ({"description": "x" * 257}, "DescriptionTooLongException"),
        ({"fileExistsBehavior": "CLOBBER"}, "InvalidFileExistsBehaviorException"),
        (
            {"deploymentMode": "RESTART", "updateOutdatedInstancesOnly": True, "revision": None},
            "InvalidUpdateOutdatedInstancesOnlyValueException",
        ),
        ({"deploymentMode": "RESTART"}, "InvalidInputException"),
    ],
)
def test_create_deployment_rejects(
    server: LiveServer, world: dict[str, Any], overrides: dict[str, Any], code: str
) -> None:
    status, body = raw_call(server, "CreateDeployment", create(world, **overrides))
    assert status == 400
    assert body["__type"] == code, body
    assert (
        world["cd"].list_deployments(applicationName="api-app", deploymentGroupName="api")[
            "deployments"
        ]
        == []
    )


def test_group_without_instances_fails_with_no_instances(world: dict[str, Any]) -> None:
    cd = world["cd"]
    deployment_id = cd.create_deployment(**create(world, deploymentGroupName="empty"))[
        "deploymentId"
    ]
    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "NO_INSTANCES"


def test_deployment_lifecycle_operations_and_their_errors(
    server: LiveServer, world: dict[str, Any]
) -> None:
    cd = world["cd"]
    # The instance has no agent: the deployment waits on its first event.
    deployment_id = cd.create_deployment(**create(world))["deploymentId"]
    assert error_code(cd.create_deployment, **create(world)) == "DeploymentLimitExceededException"

    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "InProgress"
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["deploymentOverview"]["InProgress"] == 1
    assert info["revision"] == world["revision"]
    assert info["computePlatform"] == "Server"

    listed = cd.list_deployments(
        applicationName="api-app", deploymentGroupName="api", includeOnlyStatuses=["InProgress"]
    )["deployments"]
    assert listed == [deployment_id]
    assert (
        cd.list_deployments(
            applicationName="api-app", deploymentGroupName="api", includeOnlyStatuses=["Succeeded"]
        )["deployments"]
        == []
    )
    batch = cd.batch_get_deployments(deploymentIds=[deployment_id, "d-NOTTHERE1"])
    assert [d["deploymentId"] for d in batch["deploymentsInfo"]] == [deployment_id]

    targets = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert targets == ["lonely"]
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId="lonely")
    events = target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
    assert events[0] == {"lifecycleEventName": "ApplicationStop", "status": "Pending"}
    assert cd.list_deployment_instances(deploymentId=deployment_id)["instancesList"] == ["lonely"]
    summary = cd.get_deployment_instance(deploymentId=deployment_id, instanceId="lonely")
    assert summary["instanceSummary"]["status"] == "InProgress"

    for call, kwargs, code in [
        (cd.get_deployment, {"deploymentId": "d-NOTTHERE1"}, "DeploymentDoesNotExistException"),
        (cd.get_deployment, {"deploymentId": "x"}, "InvalidDeploymentIdException"),
        (
            cd.batch_get_deployments,
            {"deploymentIds": [f"d-{i:09d}" for i in range(26)]},
            "BatchLimitExceededException",
        ),
        (
            cd.get_deployment_target,
            {"deploymentId": deployment_id, "targetId": "stranger"},
            "DeploymentTargetDoesNotExistException",
        ),
        (
            cd.batch_get_deployment_targets,
            {"deploymentId": deployment_id, "targetIds": ["t"] * 26},
            "DeploymentTargetListSizeExceededException",
        ),
        (
            cd.list_deployment_targets,
            {"deploymentId": deployment_id, "targetFilters": {"TargetStatus": ["Sleeping"]}},
            "InvalidInstanceStatusException",
        ),
        (
            cd.list_deployments,
            {
                "applicationName": "api-app",
                "deploymentGroupName": "api",
                "includeOnlyStatuses": ["Sleeping"],
            },
            "InvalidDeploymentStatusException",
        ),
        (
            cd.list_deployments,
            {"applicationName": "api-app", "deploymentGroupName": "api", "nextToken": "garbage"},
            "InvalidNextTokenException",
        ),
        (
            cd.list_deployments,
            {"applicationName": "api-app"},
            "DeploymentGroupNameRequiredException",
        ),
        (
            cd.continue_deployment,
            {"deploymentId": deployment_id, "deploymentWaitType": "READY_WAIT"},
            "UnsupportedActionForDeploymentTypeException",
        ),
        (
            cd.put_lifecycle_event_hook_execution_status,
            {
                "deploymentId": deployment_id,
                "lifecycleEventHookExecutionId": "x",
                "status": "Succeeded",
            },
            "UnsupportedActionForDeploymentTypeException",
        ),
    ]:
        assert error_code(call, **kwargs) == code, (call, kwargs)
    status, body = raw_call(
        server,
        "ListDeployments",
        {
            "applicationName": "api-app",
            "deploymentGroupName": "api",
            "createTimeRange": {"start": 10, "end": 5},
        },
    )
    assert (status, body["__type"]) == (400, "InvalidTimeRangeException")

    # Stop: nothing is running on a host, so the stop completes at once.
    stopped = cd.stop_deployment(deploymentId=deployment_id)
    assert stopped["status"] == "Succeeded"
    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    assert error_code(cd.stop_deployment, deploymentId=deployment_id) == (
        "DeploymentAlreadyCompletedException"
    )
    group = cd.get_deployment_group(applicationName="api-app", deploymentGroupName="api")
    assert group["deploymentGroupInfo"]["lastAttemptedDeployment"]["status"] == "Stopped"


def test_event_log_extension_errors(server: LiveServer) -> None:
    status, body = raw_call(
        server, "ShipyardGetLifecycleEventLog", {"deploymentId": "d-NOTTHERE1", "targetId": "x"}
    )
    assert (status, body["__type"]) == (400, "DeploymentDoesNotExistException")


def test_store_file_is_untouched_by_rejected_calls(server: LiveServer) -> None:
    assert Path(server.data_dir / "shipyard.db").exists()
