"""Fixtures for the embedded function host: a live server, a Lambda client, packages."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server

ROLE = "arn:aws:iam::123456789012:role/shipyard-function"
# Small limits so the concurrency tests need only a few workers.
HOST_SETTINGS = {"functions_max_concurrency": 6, "functions_max_function_concurrency": 3}

ECHO = """\
import os

def handler(event, context):
    return {"event": event, "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "request_id": context.aws_request_id, "arn": context.invoked_function_arn}
"""


def package(files: dict[str, str]) -> bytes:
    """A zip with ``files``; ``bootstrap`` (and ``*.sh``) executable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            executable = name == "bootstrap" or name.endswith(".sh")
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def python_function(lam: Any, name: str, source: str = ECHO, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package({"app.py": source})},
        **extra,
    )
    return created


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path / "server", **HOST_SETTINGS)


@pytest.fixture
def lam(server: LiveServer) -> Any:
    return server.client("lambda")


def keyed_client(server: LiveServer, key_id: str, secret: str = "x" * 40) -> Any:
    """A Lambda client signing with any key (unknown ones, wrong secrets)."""
    import boto3

    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
