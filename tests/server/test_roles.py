"""Users and roles over the API (every operation), the bundle store, key rotation and
revocation, and the audit list."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from shipyard.server import audit, permissions
from shipyard.server.operations import API_OPERATIONS
from tests.conftest import LiveServer, on_both_databases
from tests.support import call_extension, raw_call

Keys = tuple[str, str]


def make_user(server: LiveServer, name: str, role: str) -> Keys:
    answer = call_extension(server, "ShipyardCreateUser", {"userName": name, "role": role})
    assert answer["role"] == role and answer["accessKeyId"].startswith("AKSU")
    return answer["accessKeyId"], answer["secretAccessKey"]


def client_as(server: LiveServer, keys: Keys, service: str = "codedeploy") -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=server.region,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=BotoConfig(retries={"max_attempts": 0}, s3={"addressing_style": "path"}),
    )


@pytest.fixture
def users(live_server: LiveServer) -> dict[str, Keys]:
    return {role: make_user(live_server, f"{role}-user", role) for role in permissions.ROLES}


def test_every_operation_has_its_place_in_the_table() -> None:
    placed = {op: permissions.required_role(op) for op in API_OPERATIONS}
    assert set(placed.values()) == set(permissions.ROLES)
    assert placed["ListDeployments"] == placed["BatchGetDeployments"] == "viewer"
    assert placed["ShipyardGetLifecycleEventLog"] == placed["ShipyardListAudit"] == "viewer"
    assert placed["ShipyardGetTriggerSecret"] == "admin"  # a secret: not for viewers
    for op in ("CreateDeployment", "StopDeployment", "ShipyardRollback", "ContinueDeployment"):
        assert placed[op] == "deployer"
    for op in ("ShipyardPauseDeployment", "ShipyardApproveDeployment"):
        assert placed[op] == "deployer"
    assert placed["RegisterApplicationRevision"] == "deployer"
    for op in ("CreateApplication", "CreateDeploymentGroup", "ShipyardCreateUser"):
        assert placed[op] == "admin"
    assert placed["ShipyardIssueInstanceCredentials"] == "admin"


@pytest.mark.parametrize("role", permissions.ROLES)
def test_each_role_over_every_operation(
    live_server: LiveServer, users: dict[str, Keys], role: str
) -> None:
    """Every operation, called with an empty body: refused with AccessDeniedException
    naming the permission and the role it needs, or let through to its own checks."""
    rank = permissions.ROLES.index(role)
    for op in sorted(API_OPERATIONS):
        status, answer = raw_call(live_server, op, {}, keys=users[role])
        needed = permissions.required_role(op)
        if permissions.ROLES.index(needed) > rank:
            assert status == 403, (op, answer)
            assert answer["__type"] == "AccessDeniedException", (op, answer)
            message = answer["message"]
            assert f"codedeploy:{op}" in message and f"needs the {needed} role" in message
            assert f"user '{role}-user' (role {role})" in message
        else:
            assert answer.get("__type") != "AccessDeniedException", (op, answer)
            assert status != 403, (op, answer)


def test_roles_in_the_bundle_store(live_server: LiveServer, users: dict[str, Keys]) -> None:
    admin = live_server.client("s3")
    admin.create_bucket(Bucket="bundles")
    admin.put_object(Bucket="bundles", Key="app/v1.zip", Body=b"v1")
    viewer = client_as(live_server, users["viewer"], "s3")
    deployer = client_as(live_server, users["deployer"], "s3")

    assert viewer.get_object(Bucket="bundles", Key="app/v1.zip")["Body"].read() == b"v1"
    assert [o["Key"] for o in viewer.list_objects_v2(Bucket="bundles")["Contents"]] == [
        "app/v1.zip"
    ]
    with pytest.raises(ClientError) as refused:
        viewer.put_object(Bucket="bundles", Key="app/v2.zip", Body=b"v2")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "s3:PutObject" in refused.value.response["Error"]["Message"]

    deployer.put_object(Bucket="bundles", Key="app/v2.zip", Body=b"v2")
    assert admin.get_object(Bucket="bundles", Key="app/v2.zip")["Body"].read() == b"v2"
    with pytest.raises(ClientError) as refused:
        deployer.create_bucket(Bucket="other")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    client_as(live_server, users["admin"], "s3").create_bucket(Bucket="other")


def test_a_deployer_pushes_a_revision_a_viewer_cannot(
    live_server: LiveServer, users: dict[str, Keys]
) -> None:
    live_server.client().create_application(applicationName="shop")
    revision = {
        "revisionType": "S3",
        "s3Location": {"bucket": "bundles", "key": "shop/v1.zip", "bundleType": "zip"},
    }
    with pytest.raises(ClientError, match="AccessDeniedException"):
        client_as(live_server, users["viewer"]).register_application_revision(
            applicationName="shop", revision=revision
        )
    client_as(live_server, users["deployer"]).register_application_revision(
        applicationName="shop", revision=revision
    )
    listed = live_server.client().list_application_revisions(applicationName="shop")
    assert len(listed["revisions"]) == 1


@on_both_databases
def test_rotated_and_revoked_keys_stop_at_once(live_server: LiveServer) -> None:
    old = make_user(live_server, "alice", "viewer")
    client_as(live_server, old).list_applications()
    rotated = call_extension(live_server, "ShipyardRotateUserKey", {"userName": "alice"})
    assert rotated["role"] == "viewer"
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        client_as(live_server, old).list_applications()
    new = (rotated["accessKeyId"], rotated["secretAccessKey"])
    client_as(live_server, new).list_applications()
    listed = call_extension(live_server, "ShipyardListUsers", {})["users"]
    assert [(u["userName"], u["role"], u["accessKeyId"]) for u in listed] == [
        ("alice", "viewer", new[0])
    ]
    call_extension(live_server, "ShipyardRevokeUser", {"userName": "alice"})
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        client_as(live_server, new).list_applications()
    assert call_extension(live_server, "ShipyardListUsers", {})["users"] == []
    status, answer = raw_call(live_server, "ShipyardRevokeUser", {"userName": "alice"})
    assert (status, answer["__type"]) == (400, "UserNotFoundException")


def test_bad_user_requests(live_server: LiveServer) -> None:
    make_user(live_server, "bob", "deployer")
    cases = [
        ({"userName": "bob", "role": "viewer"}, "UserAlreadyExistsException"),
        ({"userName": "carol", "role": "owner"}, "InvalidInputException"),
        ({"userName": "no spaces", "role": "viewer"}, "InvalidInputException"),
        ({"role": "viewer"}, "InvalidInputException"),
    ]
    for body, error in cases:
        status, answer = raw_call(live_server, "ShipyardCreateUser", body)
        assert (status, answer["__type"]) == (400, error), body


@on_both_databases
def test_the_audit_list_records_who_changed_what(
    live_server: LiveServer, users: dict[str, Keys]
) -> None:
    live_server.client().create_application(applicationName="shop")
    client_as(live_server, users["admin"]).create_application(applicationName="blog")
    client_as(live_server, users["viewer"]).list_applications()  # a read: not audited
    with pytest.raises(ClientError):  # refused: not audited
        client_as(live_server, users["viewer"]).delete_application(applicationName="shop")
    with pytest.raises(ClientError):  # failed: not audited
        client_as(live_server, users["admin"]).create_application(applicationName="shop")
    viewer = users["viewer"]
    status, page = raw_call(live_server, "ShipyardListAudit", {}, keys=viewer)
    assert status == 200
    got = [(e["principal"], e["action"], e["subject"]) for e in page["entries"]]
    assert got == [
        ("admin-user", "CreateApplication", "application/blog"),
        ("admin", "CreateApplication", "application/shop"),
        *[("admin", "ShipyardCreateUser", f"user/{r}-user") for r in reversed(permissions.ROLES)],
    ]
    first = raw_call(live_server, "ShipyardListAudit", {"maxItems": 2}, keys=viewer)[1]
    assert len(first["entries"]) == 2
    rest = raw_call(
        live_server, "ShipyardListAudit", {"beforeId": first["nextBeforeId"]}, keys=viewer
    )[1]
    assert [e["id"] for e in first["entries"] + rest["entries"]] == [
        e["id"] for e in page["entries"]
    ]
    mine = raw_call(live_server, "ShipyardListAudit", {"userName": "admin-user"}, keys=viewer)[1]
    assert [e["action"] for e in mine["entries"]] == ["CreateApplication"]


def test_what_an_audit_entry_names() -> None:
    assert audit.subject({"applicationName": "a"}, {"deploymentId": "d-1"}) == "deployment/d-1"
    assert audit.subject({}, {"rollbackDeploymentId": "d-2"}) == "deployment/d-2"
    group = {"applicationName": "a", "deploymentGroupName": "g"}
    assert audit.subject(group, {}) == "group/a/g"
    assert audit.subject({"alarmName": "errors"}, {}) == "alarm/errors"
    assert audit.subject({"resourceArn": "arn:x"}, {}) == "resource/arn:x"
    assert audit.subject({}, {}) == ""
