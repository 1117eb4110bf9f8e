"""A function's own credentials and what they allow; what a function cannot read."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from shipyard.store import schema
from tests.conftest import LiveServer, service_missing, start_live_server
from tests.e2e.conftest import wait_until
from tests.functions.conftest import HOST_SETTINGS, python_function

HOOK = """\
import boto3
from botocore.exceptions import ClientError
from sqlalchemy import select

def attempt(call):
    try:
        call()
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]

def handler(event, context):
    codedeploy = boto3.client("codedeploy")
    return {
        "list_applications": attempt(codedeploy.list_applications),
        "delete_application": attempt(
            lambda: codedeploy.delete_application(applicationName="shop")),
        "put_hook_status": attempt(lambda: codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId="d-NOSUCHONE", lifecycleEventHookExecutionId="x", status="Succeeded")),
        "lambda_invoke": attempt(lambda: boto3.client("lambda").invoke(FunctionName="hook")),
        "lambda_list": attempt(boto3.client("lambda").list_functions),
        "s3_list": attempt(boto3.client("s3").list_buckets),
    }
"""


def payload(answer: dict[str, Any]) -> Any:
    return json.loads(answer["Payload"].read())


def test_a_hook_function_may_read_and_report_but_not_change(server: LiveServer, lam: Any) -> None:
    server.client("codedeploy").create_application(applicationName="shop")
    python_function(lam, "hook", HOOK, Timeout=30)
    assert payload(lam.invoke(FunctionName="hook", Payload=b"{}")) == {
        "list_applications": "ok",
        "delete_application": "AccessDeniedException",
        # Allowed: refused for what it names, not for who asks.
        "put_hook_status": "DeploymentDoesNotExistException",
        "lambda_invoke": "ok",
        "lambda_list": "AccessDeniedException",
        "s3_list": "AccessDenied",
    }
    apps = server.client("codedeploy").list_applications()["applications"]
    assert apps == ["shop"]


READER = """\
def handler(event, context):
    outcomes = {}
    for path in event["paths"]:
        try:
            with open(path, "rb") as source:
                source.read(1)
            outcomes[path] = "read"
        except OSError as exc:
            outcomes[path] = type(exc).__name__
    return outcomes
"""


@pytest.fixture
def open_parent() -> Iterator[LiveServer]:
    """A server whose data dir (0700, as operations.md asks) sits in a directory every
    user may pass through, so only the data dir's own mode keeps functions out."""
    if os.geteuid() != 0:
        service_missing("root, to run functions as the unprivileged worker user")
    parent = Path(tempfile.mkdtemp(prefix="shipyard-fn-datadir-"))
    parent.chmod(0o755)
    data_dir = parent / "server"
    data_dir.mkdir(mode=0o700)
    try:
        yield from start_live_server(data_dir, **HOST_SETTINGS)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_a_function_cannot_read_the_data_dir(open_parent: LiveServer) -> None:
    lam = open_parent.client("lambda")
    data_dir = open_parent.data_dir
    secrets = [str(data_dir / "shipyard.db"), str(data_dir / "credentials")]
    assert all(Path(p).exists() for p in secrets)
    python_function(lam, "reader", READER)
    # Its own code it can read: the check can tell the two apart.
    own = "/proc/self/cwd/app.py"
    answer = lam.invoke(FunctionName="reader", Payload=json.dumps({"paths": [*secrets, own]}))
    assert payload(answer) == {**dict.fromkeys(secrets, "PermissionError"), own: "read"}


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path / "server", functions_idle_seconds=0.3, **HOST_SETTINGS)


def test_a_workers_key_dies_with_it(short_lived: LiveServer) -> None:
    lam = short_lived.client("lambda")
    source = "import os\ndef handler(e, c):\n    return [os.environ[k] for k in e]\n"
    python_function(lam, "keys", source)
    key_id, secret = payload(
        lam.invoke(FunctionName="keys", Payload=b'["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]')
    )
    as_function = boto3.client(
        "codedeploy",
        endpoint_url=short_lived.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    assert as_function.list_applications()["applications"] == []
    host = short_lived.services.function_host
    assert host is not None
    wait_until(lambda: host.worker_count == 0, "the idle worker stopped")
    c = schema.credentials.c
    with short_lived.services.db.tx() as conn:
        kinds = [row[0] for row in conn.execute(select(c.principal_type)).all()]
    assert "function" not in kinds
    with pytest.raises(ClientError) as exc:
        as_function.list_applications()
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
