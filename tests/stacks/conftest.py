"""A live server for the stack tests, and templates built from small pieces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.support import wait_until

ROLE = "arn:aws:iam::123456789012:role/stack-function"
SOURCE = """\
import os

def handler(event, context):
    version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
    return {"build": os.environ.get("BUILD", "none"), "version": version}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path_factory.mktemp("stacks") / "server", minute_seconds=0.5)


@pytest.fixture(scope="module")
def cfn(server: LiveServer) -> Any:
    return server.client("cloudformation")


def settled(cfn: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    """The stack once its status no longer ends in IN_PROGRESS."""
    found: dict[str, Any] = wait_until(
        lambda: (
            (stack := cfn.describe_stacks(StackName=name)["Stacks"][0])["StackStatus"].endswith(
                "IN_PROGRESS"
            )
            is False
            and stack
        ),
        f"stack {name} to settle",
        timeout=timeout,
        every=0.1,
    )
    return found


def events(cfn: Any, name: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) in the order they happened."""
    found = cfn.describe_stack_events(StackName=name)["StackEvents"]
    return [
        (e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason", ""))
        for e in reversed(found)
    ]


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
