"""The Lambda platform's server-run steps over a recording Lambda client (the stand-in
for AWS here; the real APIs are exercised in tests/server/test_lambda_moto.py and
tests/e2e/test_lambda_deployments.py): the UpdateAlias each weight becomes, hooks
invoked once with a stored execution id, and what ``resume`` re-drives after a restart."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import ServerConfig
from shipyard.engine import launch, machine, messages
from shipyard.engine.state import StoredDeployment
from shipyard.platforms.lambda_ import LambdaPlatform
from shipyard.platforms.lambda_appspec import parse
from shipyard.platforms.lambda_backend import LambdaAliases
from shipyard.platforms.lambda_steps import LambdaSteps
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import hook_executions
from shipyard.store.db import Database, open_database
from tests.lambda_support import appspec

HOOKS = {"BeforeAllowTraffic": "CodeDeployHook_pre"}


class RecordingLambda:
    """What a boto3 ``lambda`` client was asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def update_alias(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("UpdateAlias", kwargs))
        return {}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("Invoke", kwargs))
        return {"StatusCode": 200, "Payload": io.BytesIO(b"null")}


class FailingFunction(RecordingLambda):
    """A hook function that raises before it reports."""

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("Invoke", kwargs))
        error = {"errorMessage": "HTTP Error 503: Service Unavailable", "errorType": "HTTPError"}
        return {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": io.BytesIO(json.dumps(error).encode()),
        }


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """The hook executions table on SQLite and on PostgreSQL."""
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def _deployment(tmp_path: Path) -> StoredDeployment:
    platform = LambdaPlatform()
    own = platform.targets(parse(appspec("orders", "live", "3", "4", HOOKS)))
    group = {
        "deploymentGroupName": "live",
        "deploymentGroupId": "dg-1",
        "computePlatform": "Lambda",
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
    }
    config = {"deploymentConfigName": "c", "trafficRoutingConfig": {"type": "AllAtOnce"}}
    request = launch.LaunchRequest("app", group, config, {}, platform_targets=own)
    snapshot = launch.LaunchSnapshot(own.target_ids, {"orders:live": "unknown"})
    stored = launch.build(request, snapshot, "d-STEPS0001", 0.0, 60.0)
    platform.prepare(stored, request, ServerConfig(data_dir=tmp_path))
    machine.step(stored.state, messages.Start(), 0.0)
    return stored


def _steps(db: Database, client: RecordingLambda) -> tuple[LambdaSteps, list[Any]]:
    applied: list[Any] = []
    steps = LambdaSteps(
        lambda _id, event: applied.append(event), db, lambda: 1.0, lambda: LambdaAliases(client)
    )
    return steps, applied


@pytest.mark.parametrize(
    ("weight", "primary", "extra"),
    [(0, "3", {}), (10, "3", {"4": 0.1}), (55, "3", {"4": 0.55}), (100, "4", {})],
)
def test_each_weight_is_one_update_alias(
    db: Database, tmp_path: Path, weight: int, primary: str, extra: dict[str, float]
) -> None:
    client = RecordingLambda()
    steps, applied = _steps(db, client)

    steps.shift(_deployment(tmp_path), "orders:live", weight)

    assert client.calls == [
        (
            "UpdateAlias",
            {
                "FunctionName": "orders",
                "Name": "live",
                "FunctionVersion": primary,
                "RoutingConfig": {"AdditionalVersionWeights": extra},
            },
        )
    ]
    assert applied == [messages.TrafficShifted("orders:live", weight, True)]


def test_a_hook_is_invoked_with_a_stored_execution_id(db: Database, tmp_path: Path) -> None:
    client = RecordingLambda()
    steps, applied = _steps(db, client)

    steps.run(_deployment(tmp_path), "orders:live", "BeforeAllowTraffic")

    ((name, call),) = client.calls
    payload = json.loads(call["Payload"])
    assert (name, call["FunctionName"], call["InvocationType"]) == (
        "Invoke",
        "CodeDeployHook_pre",
        "RequestResponse",
    )
    assert payload["DeploymentId"] == "d-STEPS0001" and set(payload) == {
        "DeploymentId",
        "LifecycleEventHookExecutionId",
    }
    with db.tx() as conn:
        stored = hook_executions.get(conn, payload["LifecycleEventHookExecutionId"])
    assert stored is not None and (stored.event, stored.status) == ("BeforeAllowTraffic", "Pending")
    assert applied == [messages.Acknowledged("orders:live", "BeforeAllowTraffic")]


def test_a_hook_function_that_fails_without_reporting_fails_its_event_at_once(
    db: Database, tmp_path: Path
) -> None:
    """Not at the event's timeout: the invocation waits for the function, and its
    error is the event's failure."""
    function = FailingFunction()
    steps, applied = _steps(db, function)

    steps.run(_deployment(tmp_path), "orders:live", "BeforeAllowTraffic")

    acknowledged, failed = applied
    assert acknowledged == messages.Acknowledged("orders:live", "BeforeAllowTraffic")
    assert failed == messages.HookReported(
        "orders:live",
        "BeforeAllowTraffic",
        False,
        "The BeforeAllowTraffic hook function CodeDeployHook_pre failed: "
        "Unhandled: HTTP Error 503: Service Unavailable",
    )
    ((_, call),) = function.calls
    execution_id = json.loads(call["Payload"])["LifecycleEventHookExecutionId"]
    with db.tx() as conn:
        execution = hook_executions.get(conn, execution_id)
    assert execution is not None and execution.status == "Failed"


def test_a_report_made_before_the_function_failed_stands(db: Database, tmp_path: Path) -> None:
    class ReportsThenRaises(FailingFunction):
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            execution_id = json.loads(kwargs["Payload"])["LifecycleEventHookExecutionId"]
            with db.tx() as conn:
                hook_executions.report(conn, execution_id, "Succeeded")
            return super().invoke(**kwargs)

    steps, applied = _steps(db, ReportsThenRaises())

    steps.run(_deployment(tmp_path), "orders:live", "BeforeAllowTraffic")

    assert applied == [messages.Acknowledged("orders:live", "BeforeAllowTraffic")]


def test_an_event_without_a_hook_succeeds_at_once(db: Database, tmp_path: Path) -> None:
    client = RecordingLambda()
    steps, applied = _steps(db, client)

    steps.run(_deployment(tmp_path), "orders:live", "AfterAllowTraffic")

    assert client.calls == []
    assert applied == [messages.HookReported("orders:live", "AfterAllowTraffic", True)]


def test_after_a_restart_a_waiting_hook_is_not_invoked_again(db: Database, tmp_path: Path) -> None:
    stored = _deployment(tmp_path)
    first, _ = _steps(db, RecordingLambda())
    first.run(stored, "orders:live", "BeforeAllowTraffic")
    client = RecordingLambda()
    restarted, _ = _steps(db, client)

    restarted.resume(stored)

    assert client.calls == []  # its execution id is stored: the report may still come


def test_after_a_restart_a_hook_never_invoked_is_and_only_once(
    db: Database, tmp_path: Path
) -> None:
    stored = _deployment(tmp_path)
    client = RecordingLambda()
    restarted, _ = _steps(db, client)

    restarted.resume(stored)
    restarted.resume(stored)  # the sweeper asks every second

    assert [name for name, _ in client.calls] == ["Invoke"]


def test_after_a_restart_the_weight_in_force_is_applied_again(db: Database, tmp_path: Path) -> None:
    stored = _deployment(tmp_path)
    machine.step(
        stored.state, messages.HookReported("orders:live", "BeforeAllowTraffic", True), 1.0
    )
    assert stored.state.shift_weight == 100
    client = RecordingLambda()
    restarted, applied = _steps(db, client)

    restarted.resume(stored)

    assert [call["FunctionVersion"] for _, call in client.calls] == ["4"]
    assert applied == [messages.TrafficShifted("orders:live", 100, True)]
