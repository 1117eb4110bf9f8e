"""What a function worker's key may call: the one policy (server/permissions.py)."""

from __future__ import annotations

import pytest

from shipyard.errors import ApiError
from shipyard.server import permissions
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


def test_the_api_table_and_the_route_checks_agree_on_function_keys() -> None:
    # The API's role table (dispatch) and the per-route check give a function key the
    # same answer, and nothing beyond its APIs: no metrics, console, bundle store or
    # secret reads.
    assert permissions.allowed(FUNCTION, "PutLifecycleEventHookExecutionStatus")
    assert permissions.allowed(FUNCTION, "GetDeployment")
    assert not permissions.allowed(FUNCTION, "CreateDeployment")
    assert not permissions.allowed(FUNCTION, "ShipyardGetTriggerSecret")
    assert not permissions.allowed(FUNCTION, permissions.READ)
    assert not permissions.allowed(FUNCTION, permissions.PUSH_BUNDLE)
