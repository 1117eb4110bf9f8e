"""``shipyard stack`` against a live server with the SAM example: deploy packages the
local code, shows the change set and follows the stack's events and the canary's
weights; a change the PreTraffic hook rejects exits 1 with the stack rolled back;
list, describe, events and delete."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.lambda_support import weight_on
from tests.stacks.conftest import outputs
from tests.stacks.test_api import invoke
from tests.stacks.test_sam_e2e import EXAMPLE, MINUTE, set_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("stack-cli") / "server", minute_seconds=MINUTE, hook_timeout=20.0
    )


def shipyard(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = server.cli_env() | {"SHIPYARD_ENDPOINT": server.url}
    return subprocess.run(
        [sys.executable, "-m", "shipyard", "stack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_stack_commands(server: LiveServer, tmp_path: Path) -> None:
    source = tmp_path / "sam-function"
    shutil.copytree(EXAMPLE, source)
    template = str(source / "template.yml")
    cfn: Any = server.client("cloudformation")
    lam: Any = server.client("lambda")

    created = shipyard(server, "deploy", "orders", "--template", template)
    assert created.returncode == 0, created.stderr
    assert "Add     OrdersApiAliaslive" in created.stdout
    assert "stack orders: CREATE_COMPLETE" in created.stdout
    stack = cfn.describe_stacks(StackName="orders")["Stacks"][0]
    alias_arn, function = outputs(stack)["LiveAlias"], outputs(stack)["Function"]
    assert invoke(server, alias_arn)["stage"] == "test"

    unchanged = shipyard(server, "deploy", "orders", "--template", template)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "No changes to deploy: stack orders is up to date" in unchanged.stdout

    # A parameter change alters the environment: a new version, shifted by the canary.
    shifted = shipyard(
        server, "deploy", "orders", "--template", template, "--parameter", "Stage=prod"
    )
    assert shifted.returncode == 0, shifted.stderr
    assert "following d-" in shifted.stdout
    assert "10% on v2" in shifted.stdout
    assert "BeforeAllowTraffic" in shifted.stdout
    assert "stack orders: UPDATE_COMPLETE" in shifted.stdout
    assert invoke(server, alias_arn) == {
        "status": "ok",
        "build": 1,
        "stage": "prod",
        "version": "2",
    }

    set_app(source, 2, status="broken")
    rejected = shipyard(server, "deploy", "orders", "--template", template)
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert "stack orders: UPDATE_ROLLBACK_COMPLETE" in rejected.stdout
    assert "UPDATE_FAILED" in rejected.stdout
    assert weight_on(lam, function, "live", "2") == 100
    assert invoke(server, alias_arn)["build"] == 1

    listed = shipyard(server, "list")
    assert "orders" in listed.stdout and "UPDATE_ROLLBACK_COMPLETE" in listed.stdout
    described = shipyard(server, "describe", "orders")
    assert "parameter Stage = prod" in described.stdout
    assert f"output LiveAlias = {alias_arn}" in described.stdout
    events = shipyard(server, "events", "orders")
    assert events.stdout.splitlines()[0].split()[1:3] == ["orders", "CREATE_IN_PROGRESS"]

    deleted = shipyard(server, "delete", "orders")
    assert deleted.returncode == 0, deleted.stderr
    assert "stack orders: DELETE_COMPLETE" in deleted.stdout
    missing = shipyard(server, "describe", "orders")
    assert missing.returncode == 4
    assert "Stack with id orders does not exist" in missing.stderr
