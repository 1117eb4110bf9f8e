"""SigV4 on the JSON protocols, and the attacks of finding 8 of issue 10: headers left out
of the signature, credential scopes for another date, region or service, and answers
that told unknown key ids from wrong signatures."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from shipyard import sigv4
from tests.conftest import LiveServer
from tests.server.wire import AGENT, API, amz_now, call, host_of, instance_keys, post, signed


def test_signed_request_is_accepted(codedeploy: Any) -> None:
    assert codedeploy.list_applications()["applications"] == []


def test_unsigned_request_is_rejected(live_server: LiveServer) -> None:
    request = urllib.request.Request(
        live_server.url + "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "CodeDeploy_20141006.ListApplications",
            "Content-Type": "application/x-amz-json-1.1",
        },
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert b"MissingAuthenticationTokenException" in info.value.read()


def test_unknown_operation_is_named(live_server: LiveServer) -> None:
    from tests.support import call_extension

    with pytest.raises(urllib.error.HTTPError) as info:
        call_extension(live_server, "NoSuchOperation", {})
    assert b"UnknownOperationException" in info.value.read()


def _failure(live_server: LiveServer, key_id: str, secret: str) -> dict[str, Any]:
    client = boto3.client(
        "codedeploy",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    with pytest.raises(ClientError) as info:
        client.list_applications()
    return {
        "status": info.value.response["ResponseMetadata"]["HTTPStatusCode"],
        **info.value.response["Error"],
    }


def test_an_unknown_key_answers_as_a_wrong_secret_does(live_server: LiveServer) -> None:
    wrong_secret = _failure(live_server, live_server.access_key_id, "wrong-secret")
    unknown_key = _failure(live_server, "AKIAUNKNOWNKEY000000", "x")
    assert wrong_secret == unknown_key
    assert unknown_key["Code"] == "UnrecognizedClientException"
    assert unknown_key["status"] == 403


@pytest.fixture
def app(codedeploy: Any) -> str:
    codedeploy.create_application(applicationName="keep")
    return "keep"


@pytest.mark.parametrize("left_out", ["X-Amz-Target", "Content-Type"])
def test_a_get_with_an_unsigned_target_cannot_be_replayed_as_a_delete(
    live_server: LiveServer, codedeploy: Any, app: str, left_out: str
) -> None:
    body = json.dumps({"applicationName": app}).encode()
    headers = signed(live_server, API + "GetApplication", body, unsigned=[left_out])
    replayed = {**headers, "X-Amz-Target": API + "DeleteApplication"}
    answer = post(live_server, replayed, body)
    assert (answer.status, answer.error) == (403, "IncompleteSignatureException")
    assert left_out.lower() in answer.json()["message"]
    assert codedeploy.get_application(applicationName=app)["application"]["applicationName"] == app


def test_a_second_target_header_does_not_slip_past_the_signature(
    live_server: LiveServer, codedeploy: Any, app: str
) -> None:
    body = json.dumps({"applicationName": app}).encode()
    headers = signed(live_server, API + "GetApplication", body)
    answer = post(live_server, {"x-amz-target": API + "DeleteApplication", **headers}, body)
    assert answer.status >= 400
    assert codedeploy.get_application(applicationName=app)["application"]["applicationName"] == app


def _forged(
    server: LiveServer, body: bytes, *, scope: str, signed_names: list[str], amz_date: str
) -> dict[str, str]:
    """A correctly computed signature over exactly ``signed_names``, for ``scope``."""
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": API + "ListApplications",
        "host": host_of(server),
        "x-amz-date": amz_date,
    }
    canonical = sigv4.canonical_request(
        "POST", "/", [], headers, signed_names, sigv4.sha256_hex(body)
    )
    signature = sigv4.signature(server.secret_access_key, amz_date, scope, canonical)
    headers["authorization"] = (
        f"{sigv4.ALGORITHM} Credential={server.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed_names)}, Signature={signature}"
    )
    return headers


def test_empty_signed_headers_are_refused(live_server: LiveServer) -> None:
    now = amz_now()
    scope = f"{now[:8]}/us-east-1/codedeploy/aws4_request"
    answer = post(
        live_server, _forged(live_server, b"{}", scope=scope, signed_names=[], amz_date=now), b"{}"
    )
    assert (answer.status, answer.error) == (403, "IncompleteSignatureException")
    all_names = ["content-type", "host", "x-amz-date", "x-amz-target"]
    good = _forged(live_server, b"{}", scope=scope, signed_names=all_names, amz_date=now)
    assert post(live_server, good, b"{}").status == 200  # the forger itself signs right


@pytest.mark.parametrize(
    "scope",
    [
        "20200101/us-east-1/codedeploy/aws4_request",  # another day than X-Amz-Date's
        "{today}/ap-south-2/codedeploy/aws4_request",  # a region this server is not
        "{today}/us-east-1/s3/aws4_request",  # another service
        "{today}/us-east-1/codedeploy-commands/aws4_request",  # the agents' service
        "{today}/us-east-1/codedeploy/aws4_reply",
    ],
)
def test_the_credential_scope_is_checked(live_server: LiveServer, scope: str) -> None:
    now = amz_now()
    names = ["content-type", "host", "x-amz-date", "x-amz-target"]
    scope = scope.format(today=now[:8])
    headers = _forged(live_server, b"{}", scope=scope, signed_names=names, amz_date=now)
    answer = post(live_server, headers, b"{}")
    assert (answer.status, answer.error) == (403, "IncompleteSignatureException")


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60])
def test_requests_signed_more_than_15_minutes_off_are_refused(
    live_server: LiveServer, skew: int
) -> None:
    answer = call(live_server, API + "ListApplications", b"{}", amz_date=amz_now(skew))
    assert (answer.status, answer.error) == (403, "InvalidSignatureException")
    assert (
        call(live_server, API + "ListApplications", b"{}", amz_date=amz_now(-14 * 60)).status == 200
    )


@pytest.mark.parametrize("service", ["codedeploy-commands", "codedeploy-commands-secure"])
def test_agents_sign_for_the_command_service(live_server: LiveServer, service: str) -> None:
    creds, host = instance_keys(live_server, "web-1")
    body = json.dumps({"HostIdentifier": host, "ShipyardPollSeconds": 0}).encode()
    answer = call(live_server, AGENT + "PollHostCommand", body, creds=creds, service=service)
    assert answer.status == 200
    refused = call(live_server, AGENT + "PollHostCommand", body, creds=creds, service="codedeploy")
    assert (refused.status, refused.error) == (403, "IncompleteSignatureException")
