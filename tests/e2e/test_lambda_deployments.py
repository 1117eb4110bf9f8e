"""Lambda deployments end to end on the embedded function host: real functions in
worker processes, hook functions that report with boto3's
put_lifecycle_event_hook_execution_status through the server, and the alias invoked
while its traffic shifts (the share of v2 follows the schedule). Failing and silent
hooks, an alarm and a stop each end with the traffic back on v1.

Scaled minutes: one routing-config minute lasts MINUTE seconds, and a hook has
HOOK_TIMEOUT seconds to report.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select

from shipyard.store import schema
from tests.conftest import LiveServer, start_live_server
from tests.functions.conftest import package, python_function
from tests.lambda_support import appspec, create_group, lambda_info, revision, weight_on
from tests.server.crud_support import aws
from tests.support import call_extension, wait_until

pytestmark = pytest.mark.e2e

APP = "orders"
FUNCTION = "orders-api"
MINUTE = 0.5
HOOK_TIMEOUT = 8.0
CANARY = "Canary30Percent10Minutes"  # 30 % for 5 s, then 100 %
LINEAR = "Linear50PercentEvery10Minutes"  # 50 % for 5 s, then 100 %
SAMPLES = 80

APP_SOURCE = """\
import os

def handler(event, context):
    return {{"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "build": {build}}}
"""
HOOK_SOURCE = """\
import os
import boto3

def handler(event, context):
    status = os.environ["HOOK_STATUS"]
    if status != "Silent":
        boto3.client("codedeploy").put_lifecycle_event_hook_execution_status(
            deploymentId=event["DeploymentId"],
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=status,
        )
    return status
"""
HOOKS = {
    "Succeeded": "CodeDeployHook_ok",
    "Failed": "CodeDeployHook_no",
    "Silent": "CodeDeployHook_mute",
}


class Stub:
    """An HTTP endpoint: GET answers the status the test sets (an HTTP alarm reads it);
    POST bodies (trigger notifications) are kept."""

    def __init__(self) -> None:
        self.status = 200
        self.posts: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(stub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                stub.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("lambda-e2e") / "server",
        minute_seconds=MINUTE,
        hook_timeout=HOOK_TIMEOUT,
    )


@pytest.fixture(scope="module")
def lam(server: LiveServer) -> Any:
    """Function orders-api with versions 1 and 2, and the three hook functions."""
    client = server.client("lambda")
    python_function(client, FUNCTION, APP_SOURCE.format(build=1))
    client.publish_version(FunctionName=FUNCTION)
    code = package({"app.py": APP_SOURCE.format(build=2)})
    client.update_function_code(FunctionName=FUNCTION, ZipFile=code)
    client.publish_version(FunctionName=FUNCTION)
    for status, name in HOOKS.items():
        python_function(
            client, name, HOOK_SOURCE, Environment={"Variables": {"HOOK_STATUS": status}}
        )
    return client


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Lambda")
    for name, routing in (
        (CANARY, {"type": "TimeBasedCanary", "timeBasedCanary": _canary(30, 10)}),
        (LINEAR, {"type": "TimeBasedLinear", "timeBasedLinear": _linear(50, 10)}),
    ):
        client.create_deployment_config(
            deploymentConfigName=name, computePlatform="Lambda", trafficRoutingConfig=routing
        )
    return client


@pytest.fixture
def stub() -> Iterator[Stub]:
    endpoint = Stub()
    yield endpoint
    endpoint.close()


@pytest.fixture
def alarm(server: LiveServer, stub: Stub) -> Stub:
    stub = Stub()
    call_extension(
        server, "ShipyardPutAlarm", {"alarmName": "fn-health", "http": {"url": stub.url}}
    )
    yield stub
    stub.close()


def _canary(percent: int, minutes: int) -> dict[str, int]:
    return {"canaryPercentage": percent, "canaryInterval": minutes}


def _linear(percent: int, minutes: int) -> dict[str, int]:
    return {"linearPercentage": percent, "linearInterval": minutes}


ROLLBACK_ALL = {
    "enabled": True,
    "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"],
}


def _setup(lam: Any, cd: Any, name: str, config: str, **group: Any) -> str:
    """A fresh alias ``name`` on version 1 and a group of the same name."""
    lam.create_alias(FunctionName=FUNCTION, Name=name, FunctionVersion="1")
    create_group(cd, APP, name, config, **group)
    return f"{FUNCTION}:{name}"


def _deploy(cd: Any, alias: str, hooks: dict[str, str] | None = None) -> str:
    content = appspec(FUNCTION, alias, "1", "2", hooks)
    answer = cd.create_deployment(
        applicationName=APP, deploymentGroupName=alias, revision=revision(content)
    )
    return str(answer["deploymentId"])


def _info(cd: Any, deployment_id: str) -> dict[str, Any]:
    return dict(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def _ended(cd: Any, deployment_id: str, status: str) -> dict[str, Any]:
    info: dict[str, Any] = wait_until(
        lambda: (found := _info(cd, deployment_id))["status"] == status and found,
        lambda: f"{deployment_id} to be {status}: {_info(cd, deployment_id)}",
        timeout=60,
    )
    return info


def _weight(cd: Any, deployment_id: str, target: str) -> float:
    return float(
        lambda_info(cd, deployment_id, target)["lambdaFunctionInfo"]["targetVersionWeight"]
    )


def _versions(lam: Any, alias: str, count: int) -> list[str]:
    """Which version answered each of ``count`` invocations of the alias."""
    seen = []
    for _ in range(count):
        answer = lam.invoke(FunctionName=FUNCTION, Qualifier=alias, Payload=b"{}")
        assert "FunctionError" not in answer, answer["Payload"].read()
        seen.append(answer["ExecutedVersion"])
    return seen


def _on_v1_only(lam: Any, alias: str) -> None:
    """The alias is back on version 1 alone (the shift back is applied just after the
    deployment ends), and invocations say so."""

    def back() -> bool:
        found = lam.get_alias(FunctionName=FUNCTION, Name=alias)
        routing = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
        return bool(found["FunctionVersion"] == "1" and not routing)

    wait_until(back, f"alias {alias} back on version 1 alone", timeout=10)
    assert set(_versions(lam, alias, 10)) == {"1"}


def _events(cd: Any, deployment_id: str, target: str) -> list[tuple[str, str]]:
    events = lambda_info(cd, deployment_id, target)["lifecycleEvents"]
    return [(e["lifecycleEventName"], e["status"]) for e in events]


def _share_during(cd: Any, lam: Any, deployment_id: str, alias: str, weight: float) -> float:
    """The share of version 2 among invocations made while the target's weight is
    ``weight`` (checked before and after the sample)."""
    target = f"{FUNCTION}:{alias}"
    wait_until(lambda: _weight(cd, deployment_id, target) == weight, f"the {weight} % step")
    seen = _versions(lam, alias, SAMPLES)
    assert _weight(cd, deployment_id, target) == weight, "the step ended before the sample did"
    return seen.count("2") / len(seen)


def test_a_canary_with_passing_hooks_moves_invocations_to_v2(
    server: LiveServer, lam: Any, cd: Any, stub: Stub
) -> None:
    trigger = {
        "triggerName": "ops",
        "triggerTargetArn": stub.url,
        "triggerEvents": ["DeploymentStart", "DeploymentSuccess"],
    }
    target = _setup(lam, cd, "canary", CANARY, triggerConfigurations=[trigger])
    assert set(_versions(lam, "canary", 10)) == {"1"}
    hooks = {"BeforeAllowTraffic": HOOKS["Succeeded"], "AfterAllowTraffic": HOOKS["Succeeded"]}
    deployment_id = _deploy(cd, "canary", hooks)

    share = _share_during(cd, lam, deployment_id, "canary", 30.0)

    # 80 invocations at 30 %: a share outside 10-55 % has odds below one in 10^5.
    assert 0.10 <= share <= 0.55, share
    info = _ended(cd, deployment_id, "Succeeded")
    assert set(_versions(lam, "canary", 10)) == {"2"}
    assert info["computePlatform"] == "Lambda"
    assert _events(cd, deployment_id, target) == [
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
    ]
    assert (
        lambda_info(cd, deployment_id, target)["lambdaFunctionInfo"]["targetVersionWeight"] == 100
    )
    _hook_reports_are_checked(server, cd, deployment_id)
    told = wait_until(lambda: len(stub.posts) >= 2 and stub.posts, "both trigger notifications")
    assert sorted((p["eventType"], p["status"]) for p in told) == [
        ("DeploymentStart", "CREATED"),
        ("DeploymentSuccess", "SUCCEEDED"),
    ]
    assert {p["deploymentId"] for p in told} == {deployment_id}


def _hook_reports_are_checked(server: LiveServer, cd: Any, deployment_id: str) -> None:
    """Both hooks reported through the server; a report again, a bad status or an
    unknown id get their own errors."""
    h = schema.hook_executions.c
    with server.services.db.tx() as conn:
        rows = conn.execute(
            select(h.execution_id, h.event, h.status).where(h.deployment_id == deployment_id)
        ).all()
    assert sorted((event, status) for _, event, status in rows) == [
        ("AfterAllowTraffic", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
    ]
    for execution_id, status, code in (
        (rows[0][0], "Succeeded", "LifecycleEventAlreadyCompletedException"),
        (rows[0][0], "Skipped", "InvalidLifecycleEventHookExecutionStatusException"),
        ("not-an-execution", "Failed", "InvalidLifecycleEventHookExecutionIdException"),
    ):
        with pytest.raises(ClientError) as raised:
            cd.put_lifecycle_event_hook_execution_status(
                deploymentId=deployment_id,
                lifecycleEventHookExecutionId=execution_id,
                status=status,
            )
        assert raised.value.response["Error"]["Code"] == code


def test_a_linear_shift_driven_by_the_aws_cli(server: LiveServer, lam: Any, cd: Any) -> None:
    target = _setup(lam, cd, "linear", LINEAR)
    hooks = {"BeforeAllowTraffic": HOOKS["Succeeded"]}
    content = appspec(FUNCTION, "linear", "1", "2", hooks)
    created = aws(
        server,
        "deploy",
        "create-deployment",
        "--application-name",
        APP,
        "--deployment-group-name",
        "linear",
        "--revision",
        json.dumps(revision(content)),
    )
    deployment_id = created["deploymentId"]

    share = _share_during(cd, lam, deployment_id, "linear", 50.0)

    assert 0.25 <= share <= 0.75, share
    _ended(cd, deployment_id, "Succeeded")
    shown = aws(
        server,
        "deploy",
        "get-deployment-target",
        "--deployment-id",
        deployment_id,
        "--target-id",
        target,
    )
    assert shown["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"] == {
        "functionName": FUNCTION,
        "functionAlias": "linear",
        "currentVersion": "1",
        "targetVersion": "2",
        "targetVersionWeight": 100.0,
    }
    alias = aws(server, "lambda", "get-alias", "--function-name", FUNCTION, "--name", "linear")
    assert alias["FunctionVersion"] == "2"


@pytest.mark.parametrize(
    ("name", "hooks", "rollback_message"),
    [
        (
            "fail-before",
            {"BeforeAllowTraffic": HOOKS["Failed"]},
            "No rollback needed: traffic never left the original version.",
        ),
        (
            "fail-after",
            {"BeforeAllowTraffic": HOOKS["Succeeded"], "AfterAllowTraffic": HOOKS["Failed"]},
            "shifted back to the original version",
        ),
        (
            "silent-after",
            {"AfterAllowTraffic": HOOKS["Silent"]},
            "shifted back to the original version",
        ),
    ],
)
def test_a_hook_that_fails_or_never_reports_ends_with_traffic_on_v1(
    lam: Any, cd: Any, name: str, hooks: dict[str, str], rollback_message: str
) -> None:
    target = _setup(
        lam, cd, name, "CodeDeployDefault.LambdaAllAtOnce", autoRollbackConfiguration=ROLLBACK_ALL
    )
    deployment_id = _deploy(cd, name, hooks)

    info = _ended(cd, deployment_id, "Failed")

    _on_v1_only(lam, name)
    assert rollback_message in info["rollbackInfo"]["rollbackMessage"]
    event = next(iter(hooks.keys() - {"BeforeAllowTraffic"} or hooks))
    assert (event, "Failed") in _events(cd, deployment_id, target)
    if "silent" in name:
        failed = lambda_info(cd, deployment_id, target)["lifecycleEvents"][2]
        assert f"No result for AfterAllowTraffic within {HOOK_TIMEOUT:.0f} seconds" in str(failed)


def test_an_alarm_during_the_canary_moves_traffic_back(lam: Any, cd: Any, alarm: Stub) -> None:
    _setup(
        lam,
        cd,
        "alarmed",
        CANARY,
        autoRollbackConfiguration=ROLLBACK_ALL,
        alarmConfiguration={"enabled": True, "alarms": [{"name": "fn-health"}]},
    )
    deployment_id = _deploy(cd, "alarmed")
    wait_until(lambda: weight_on(lam, FUNCTION, "alarmed", "2") == 30, "the canary on the alias")

    alarm.status = 500

    info = _ended(cd, deployment_id, "Stopped")
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    _on_v1_only(lam, "alarmed")
    assert "shifted back" in info["rollbackInfo"]["rollbackMessage"]


@pytest.mark.parametrize("rollback", [True, False])
def test_a_stop_during_the_canary_moves_traffic_back(lam: Any, cd: Any, rollback: bool) -> None:
    name = f"stop-{str(rollback).lower()}"
    target = _setup(lam, cd, name, CANARY)
    deployment_id = _deploy(cd, name)
    wait_until(lambda: weight_on(lam, FUNCTION, name, "2") == 30, "the canary on the alias")

    answer = cd.stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=rollback)

    assert answer["status"] == "Succeeded"
    info = _ended(cd, deployment_id, "Stopped")
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    _on_v1_only(lam, name)
    assert ("rollbackInfo" in info) is rollback
    assert _events(cd, deployment_id, target)[0] == ("BeforeAllowTraffic", "Succeeded")


def test_a_shift_paused_midway_resumes_and_ends_on_v2(
    server: LiveServer, lam: Any, cd: Any
) -> None:
    """(That a paused shift holds its weight, whatever the time, is the engine's test:
    tests/engine/test_traffic_shift.py.)"""
    target = _setup(lam, cd, "paused", "CodeDeployDefault.LambdaLinear10PercentEvery1Minute")
    deployment_id = _deploy(cd, "paused")
    wait_until(lambda: _weight(cd, deployment_id, target) >= 20, "the second step")

    call_extension(server, "ShipyardPauseDeployment", {"deploymentId": deployment_id})

    info = _info(cd, deployment_id)
    assert info["status"] == "InProgress"
    assert any(m.startswith("Paused") for m in info["deploymentStatusMessages"])
    assert 20 <= _weight(cd, deployment_id, target) < 100
    call_extension(server, "ShipyardResumeDeployment", {"deploymentId": deployment_id})
    _ended(cd, deployment_id, "Succeeded")
    assert lam.get_alias(FunctionName=FUNCTION, Name="paused")["FunctionVersion"] == "2"
