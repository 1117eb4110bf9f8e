from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer
from tests.support import call_extension


def test_signed_request_is_accepted(cd: Any) -> None:
    assert cd.list_applications()["applications"] == []


def test_unsigned_request_is_rejected(server: LiveServer) -> None:
    request = urllib.request.Request(
        server.url + "/",
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


def test_unknown_operation_is_named(server: LiveServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        call_extension(server, "NoSuchOperation", {})
    assert b"UnknownOperationException" in info.value.read()


def test_wrong_secret_is_rejected(server: LiveServer) -> None:
    client = boto3.client(
        "codedeploy",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key="wrong-secret",
    )
    with pytest.raises(ClientError) as info:
        client.list_applications()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_unknown_key_is_rejected(server: LiveServer) -> None:
    client = boto3.client(
        "codedeploy",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="x",
    )
    with pytest.raises(ClientError) as info:
        client.list_applications()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
