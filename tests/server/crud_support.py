"""Helpers for the resource-API tests: unique names, error codes, the error of a raw
signed JSON call (for bodies botocore refuses to send) and the real AWS CLI."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer
from tests.support import raw_call

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


def raw_error(server: LiveServer, operation: str, body: Any) -> str:
    """The ``__type`` of a raw call that must fail with HTTP 400."""
    status, payload = raw_call(server, operation, body)
    assert status == 400, payload
    return str(payload["__type"])


def aws_cli(server: LiveServer, *args: str) -> Any:
    """Run ``aws deploy <args>`` against the server; returns the parsed JSON output."""
    return aws(server, "deploy", *args)


def aws(server: LiveServer, service: str, *args: str) -> Any:
    """Run ``aws <service> <args>`` against the server; returns the parsed JSON output."""
    result = subprocess.run(
        [str(AWS_CLI), service, *args, "--endpoint-url", server.url, "--output", "json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}
