"""Helpers for the resource-API tests: unique names, error codes, raw signed JSON calls
(for bodies botocore refuses to send) and the real AWS CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import LiveServer

ROLE_ARN = "arn:aws:iam::000000000000:role/CodeDeployServiceRole"
AWS_CLI = Path(sys.executable).parent / "aws"
_counter = itertools.count()
_run = uuid.uuid4().hex[:6]


def unique(prefix: str) -> str:
    """A name no other test in this server uses."""
    return f"{prefix}-{_run}-{next(_counter)}"


def error_code(call: Callable[..., Any], **kwargs: Any) -> str:
    """The AWS error code the call fails with (fails the test if it succeeds)."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


def raw_call(
    server: LiveServer,
    operation: str,
    body: Any,
    *,
    target_prefix: str = "CodeDeploy_20141006",
    service: str = "codedeploy",
    keys: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a SigV4-signed JSON body as is, bypassing botocore's parameter validation;
    with the admin key unless ``keys`` (access key id, secret) are given."""
    data = json.dumps(body).encode()
    url = server.url + "/"
    headers = {
        "X-Amz-Target": f"{target_prefix}.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    request = AWSRequest(method="POST", url=url, data=data, headers=headers)
    credentials = Credentials(*(keys or (server.access_key_id, server.secret_access_key)))
    SigV4Auth(credentials, service, server.region).add_auth(request)
    outgoing = urllib.request.Request(url, data=data, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(outgoing, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def raw_error(server: LiveServer, operation: str, body: Any) -> str:
    """The ``__type`` of a raw call that must fail with HTTP 400."""
    status, payload = raw_call(server, operation, body)
    assert status == 400, payload
    return str(payload["__type"])


def aws_cli(server: LiveServer, *args: str) -> Any:
    """Run ``aws deploy <args>`` against the server; returns the parsed JSON output."""
    result = subprocess.run(
        [str(AWS_CLI), "deploy", *args, "--endpoint-url", server.url, "--output", "json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}
