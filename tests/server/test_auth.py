from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer


def test_signed_request_is_accepted(codedeploy: Any) -> None:
    assert codedeploy.list_applications()["applications"] == []


def test_unsigned_request_is_rejected(live_server: LiveServer) -> None:
    import urllib.error
    import urllib.request

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
    import urllib.error

    from tests.support import call_extension

    with pytest.raises(urllib.error.HTTPError) as info:
        call_extension(live_server, "NoSuchOperation", {})
    assert b"UnknownOperationException" in info.value.read()


def test_wrong_secret_is_rejected(live_server: LiveServer) -> None:
    client = boto3.client(
        "codedeploy",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=live_server.access_key_id,
        aws_secret_access_key="wrong-secret",
    )
    with pytest.raises(ClientError) as info:
        client.list_applications()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_unknown_key_is_rejected(live_server: LiveServer) -> None:
    client = boto3.client(
        "codedeploy",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="x",
    )
    with pytest.raises(ClientError) as info:
        client.list_applications()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
