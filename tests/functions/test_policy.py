"""What a function worker's key may call: the one policy in server/auth.py."""

from __future__ import annotations

import pytest

from shipyard.errors import ApiError
from shipyard.server.auth import authorize
from shipyard.server.context import Principal

FUNCTION = Principal("function", "hook:1")


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("codedeploy", "PutLifecycleEventHookExecutionStatus"),
        ("codedeploy", "GetDeployment"),
        ("codedeploy", "ListApplications"),
        ("codedeploy", "BatchGetDeploymentTargets"),
        ("lambda", "Invoke"),
    ],
)
def test_allowed(service: str, operation: str) -> None:
    authorize(FUNCTION, service, operation)


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("codedeploy", "CreateDeployment"),
        ("codedeploy", "StopDeployment"),
        ("codedeploy", "DeleteApplication"),
        ("codedeploy", "ShipyardIssueInstanceCredentials"),
        ("codedeploy-commands", "PollHostCommand"),
        ("lambda", "GetFunction"),
        ("lambda", "UpdateAlias"),
        ("s3", "GET"),
    ],
)
def test_denied(service: str, operation: str) -> None:
    with pytest.raises(ApiError) as exc:
        authorize(FUNCTION, service, operation)
    assert (exc.value.name, exc.value.status) == ("AccessDeniedException", 403)


def test_other_principals_are_left_to_their_own_checks() -> None:
    authorize(Principal("admin", "admin"), "lambda", "UpdateAlias")
    authorize(Principal("instance", "web-1"), "codedeploy-commands", "PollHostCommand")
