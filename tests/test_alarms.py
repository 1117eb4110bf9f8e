"""Alarms without Prometheus: HTTP checks and Prometheus failure readings against a tiny
local HTTP server, the alarm operations and CLI on a real server, and the watcher
stopping a real deployment (on a server whose hosts have no agent, so it stays
InProgress until something stops it)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from shipyard.alarms import AlarmDefinition, AlarmReading, evaluate
from shipyard.cli import main as cli
from shipyard.cli.client import CliError, ShipyardClient
from shipyard.engine import messages
from shipyard.model import DeploymentStatus
from shipyard.server.alarm_watch import Watched, verdict, watched
from shipyard.store import alarms as alarm_store
from tests.conftest import LiveServer, free_port, start_live_server
from tests.support import wait_until

# --- a tiny HTTP server: canned answers by path ---------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Stub:
    url: str
    answers: dict[str, Answer]
    hits: dict[str, int] = field(default_factory=dict)

    def hit_count(self, path: str) -> int:
        return self.hits.get(path, 0)


@pytest.fixture
def stub() -> Iterator[Stub]:
    answers: dict[str, Answer] = {}
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            hits[path] = hits.get(path, 0) + 1
            answer = answers.get(path, Answer(404, b"not found"))
            if answer.delay:
                time.sleep(answer.delay)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Stub(f"http://127.0.0.1:{server.server_address[1]}", answers, hits)
    finally:
        server.shutdown()
        server.server_close()


def http_alarm(url: str, **kwargs: Any) -> AlarmDefinition:
    return AlarmDefinition(name="health", kind="http", url=url, **kwargs)


def prometheus_alarm(url: str, query: str = "app_errors") -> AlarmDefinition:
    return AlarmDefinition(name="errors", kind="prometheus", prometheus_url=url, query=query)


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


# --- HTTP checks ------------------------------------------------------------------------


def test_http_check_ok_when_status_matches(stub: Stub) -> None:
    stub.answers["/health"] = Answer(200)
    stub.answers["/empty"] = Answer(204, b"")
    assert evaluate(http_alarm(stub.url + "/health"), 2).state == "OK"
    assert evaluate(http_alarm(stub.url + "/empty", expect_status=204), 2).state == "OK"


def test_http_check_alarms_on_other_status(stub: Stub) -> None:
    stub.answers["/health"] = Answer(503, b"down")
    reading = evaluate(http_alarm(stub.url + "/health"), 2)
    assert reading == AlarmReading("ALARM", f"GET {stub.url}/health answered 503, expected 200")
    stub.answers["/health"] = Answer(200)
    assert evaluate(http_alarm(stub.url + "/health", expect_status=204), 2).state == "ALARM"


def test_http_check_does_not_follow_redirects(stub: Stub) -> None:
    stub.answers["/old"] = Answer(302, b"", {"Location": "/health"})
    stub.answers["/health"] = Answer(200)
    reading = evaluate(http_alarm(stub.url + "/old"), 2)
    assert reading.state == "ALARM"
    assert "answered 302" in reading.message
    assert evaluate(http_alarm(stub.url + "/old", expect_status=302), 2).state == "OK"
    assert stub.hit_count("/health") == 0


def test_http_check_alarms_when_unreachable() -> None:
    url = dead_url() + "/health"
    reading = evaluate(http_alarm(url), 2)
    assert reading.state == "ALARM"
    assert reading.message.startswith(f"GET {url} failed:")
    assert "refused" in reading.message.lower()


def test_http_check_alarms_on_timeout_using_the_shorter_limit(stub: Stub) -> None:
    stub.answers["/slow"] = Answer(200, delay=1.0)
    started = time.monotonic()
    reading = evaluate(http_alarm(stub.url + "/slow", timeout=0.2), 10)
    assert time.monotonic() - started < 0.9
    assert reading.state == "ALARM"
    assert "timed out" in reading.message


# --- Prometheus readings that fail (the real thing is in tests/e2e) --------------------


def test_prometheus_unreachable_is_unknown() -> None:
    url = dead_url()
    reading = evaluate(prometheus_alarm(url), 2)
    assert reading.state == "UNKNOWN"
    assert reading.message.startswith(f"cannot reach Prometheus at {url}:")


def test_prometheus_error_answer_is_unknown_with_its_reason(stub: Stub) -> None:
    error = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    stub.answers["/api/v1/query"] = Answer(400, json.dumps(error).encode())
    reading = evaluate(prometheus_alarm(stub.url), 2)
    assert reading == AlarmReading(
        "UNKNOWN",
        f'Prometheus at {stub.url} refused the query: bad_data: parse error: unexpected "}}"',
    )
    stub.answers["/api/v1/query"] = Answer(502, b"<html>bad gateway</html>")
    reading = evaluate(prometheus_alarm(stub.url), 2)
    assert reading.state == "UNKNOWN"
    assert reading.message.endswith("refused the query: HTTP 502 Bad Gateway")


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b"[1, 2]",
        json.dumps({"status": "success", "data": {"resultType": "vector"}}).encode(),
        json.dumps(
            {"status": "success", "data": {"resultType": "vector", "result": [{"value": []}]}}
        ).encode(),
    ],
)
def test_prometheus_malformed_answer_is_unknown(stub: Stub, body: bytes) -> None:
    stub.answers["/api/v1/query"] = Answer(200, body)
    reading = evaluate(prometheus_alarm(stub.url), 2)
    assert reading == AlarmReading(
        "UNKNOWN", f"{stub.url} did not answer like the Prometheus query API"
    )


def test_prometheus_url_with_trailing_slash_and_path(stub: Stub) -> None:
    answer = {"status": "success", "data": {"resultType": "vector", "result": []}}
    stub.answers["/prom/api/v1/query"] = Answer(200, json.dumps(answer).encode())
    assert evaluate(prometheus_alarm(stub.url + "/prom/"), 2).state == "OK"


# --- the watcher's decisions ------------------------------------------------------------


def test_watched_only_enabled_configurations_of_running_deployments() -> None:
    config = {"enabled": True, "alarms": [{"name": "a"}, {"name": "b"}]}
    info = {"alarmConfiguration": config}
    assert watched("d-1", DeploymentStatus.IN_PROGRESS, info) == Watched("d-1", ("a", "b"), False)
    assert watched("d-1", DeploymentStatus.BAKING, info) is not None
    for status in (DeploymentStatus.CREATED, DeploymentStatus.SUCCEEDED, DeploymentStatus.STOPPED):
        assert watched("d-1", status, info) is None
    disabled = {"alarmConfiguration": {**config, "enabled": False}}
    assert watched("d-1", DeploymentStatus.IN_PROGRESS, disabled) is None
    assert watched("d-1", DeploymentStatus.IN_PROGRESS, {}) is None
    odd = {"alarmConfiguration": {"enabled": True, "alarms": ["a", {"name": 3}, {"name": "c"}]}}
    assert watched("d-1", DeploymentStatus.IN_PROGRESS, odd) == Watched("d-1", ("c",), False)


def test_verdict_first_alarm_or_unreadable_unless_ignored() -> None:
    strict = Watched("d-1", ("a", "b"), ignore_poll_failure=False)
    lenient = Watched("d-1", ("a", "b"), ignore_poll_failure=True)
    ok = AlarmReading("OK", "fine")
    alarm = AlarmReading("ALARM", "errors are up")
    unknown = AlarmReading("UNKNOWN", "no answer")
    assert verdict(strict, {"a": ok, "b": ok}) is None
    assert verdict(strict, {"a": ok, "b": alarm}) == messages.AlarmFired("b", "errors are up")
    assert verdict(lenient, {"a": unknown, "b": alarm}) == messages.AlarmFired("b", "errors are up")
    assert verdict(lenient, {"a": unknown, "b": ok}) is None
    assert verdict(strict, {"a": unknown, "b": ok}) == messages.AlarmFired(
        "a", "its state cannot be read: no answer"
    )


# --- the operations, on a real server ---------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path / "server", alarm_poll_seconds=0.1)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the many small refusal cases (each leaves the store as it was)."""
    yield from start_live_server(tmp_path_factory.mktemp("shared") / "server")


_clients: dict[str, ShipyardClient] = {}


def call(server: LiveServer, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Shipyard extension call as the CLI makes it (API errors raise CliError)."""
    client = _clients.get(server.url)
    if client is None:  # building the boto3 clients is slow: one per server
        session = boto3.Session(
            aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key
        )
        client = _clients[server.url] = ShipyardClient(server.url, server.region, session)
    return client.call_extension(op, body)


def error_of(server: LiveServer, op: str, body: dict[str, Any]) -> str:
    with pytest.raises(CliError) as caught:
        call(server, op, body)
    return caught.value.message


PROM = {"url": "http://prom.internal:9090", "query": "sum(rate(errors[1m])) > 5"}


def test_put_get_list_delete(server: LiveServer) -> None:
    call(server, "ShipyardPutAlarm", {"alarmName": "errors", "prometheus": PROM})
    health = {"url": "https://app.internal/health", "expectStatus": 204, "timeoutSeconds": 2}
    call(server, "ShipyardPutAlarm", {"alarmName": "health", "http": health, "bakeSeconds": 30})
    got = call(server, "ShipyardGetAlarm", {"alarmName": "errors"})
    assert got == {"alarm": {"alarmName": "errors", "prometheus": PROM, "bakeSeconds": 0.0}}
    listed = call(server, "ShipyardListAlarms", {})["alarms"]
    assert [a["alarmName"] for a in listed] == ["errors", "health"]
    assert listed[1] == {"alarmName": "health", "http": health, "bakeSeconds": 30.0}
    # Put again replaces the definition.
    replaced = {**PROM, "threshold": 2.5}
    call(server, "ShipyardPutAlarm", {"alarmName": "errors", "prometheus": replaced})
    got = call(server, "ShipyardGetAlarm", {"alarmName": "errors"})
    assert got["alarm"]["prometheus"] == replaced
    assert call(server, "ShipyardDeleteAlarm", {"alarmName": "errors"}) == {}
    assert [a["alarmName"] for a in call(server, "ShipyardListAlarms", {})["alarms"]] == ["health"]
    missing = error_of(server, "ShipyardGetAlarm", {"alarmName": "errors"})
    assert missing.startswith("AlarmDoesNotExistException: No alarm named 'errors'")
    missing = error_of(server, "ShipyardDeleteAlarm", {"alarmName": "errors"})
    assert missing.startswith("AlarmDoesNotExistException")
    assert error_of(server, "ShipyardGetAlarm", {}).startswith("InvalidInputException")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prometheus": PROM}, "alarmName is required"),
        ({"alarmName": "x" * 256, "prometheus": PROM}, "1-255 characters"),
        ({"alarmName": "a"}, "exactly one check"),
        ({"alarmName": "a", "prometheus": PROM, "http": {"url": "http://x"}}, "exactly one"),
        ({"alarmName": "a", "prometheus": {**PROM, "url": "ftp://x"}}, "prometheus.url"),
        ({"alarmName": "a", "prometheus": {**PROM, "url": "http://"}}, "with a host"),
        ({"alarmName": "a", "prometheus": {**PROM, "query": " "}}, "prometheus.query"),
        ({"alarmName": "a", "prometheus": {"url": PROM["url"]}}, "prometheus.query"),
        ({"alarmName": "a", "prometheus": {**PROM, "threshold": "5"}}, "must be a number"),
        ({"alarmName": "a", "prometheus": {**PROM, "threshold": True}}, "must be a number"),
        ({"alarmName": "a", "prometheus": {**PROM, "querry": "x"}}, "unknown members"),
        ({"alarmName": "a", "prometheus": "http://x"}, "must be an object"),
        ({"alarmName": "a", "http": {"url": "localhost/health"}}, "http.url"),
        ({"alarmName": "a", "http": {"url": "http://x", "expectStatus": 99}}, "100-599"),
        ({"alarmName": "a", "http": {"url": "http://x", "timeoutSeconds": 0}}, "between"),
        ({"alarmName": "a", "prometheus": PROM, "bakeSeconds": -1}, "between 0 and 86400"),
        ({"alarmName": "a", "prometheus": PROM, "bakeSeconds": 86401}, "between 0 and 86400"),
        ({"alarmName": "a", "prometheus": PROM, "bake": 5}, "unknown members"),
    ],
)
def test_put_rejects_bad_definitions(
    shared_server: LiveServer, body: dict[str, Any], words: str
) -> None:
    server = shared_server
    call(server, "ShipyardPutAlarm", {"alarmName": "a", "prometheus": PROM, "bakeSeconds": 9})
    message = error_of(server, "ShipyardPutAlarm", body)
    assert message.startswith("InvalidAlarmConfigException: "), message
    assert words in message
    # Nothing stored is lost: the earlier definition of "a" is intact.
    got = call(server, "ShipyardGetAlarm", {"alarmName": "a"})["alarm"]
    assert got == {"alarmName": "a", "prometheus": PROM, "bakeSeconds": 9.0}


def test_bake_seconds_is_the_longest_of_the_named_alarms(server: LiveServer) -> None:
    for name, bake in (("short", 5), ("long", 90), ("none", 0)):
        call(
            server, "ShipyardPutAlarm", {"alarmName": name, "prometheus": PROM, "bakeSeconds": bake}
        )
    with server.services.db.tx() as conn:
        assert alarm_store.bake_seconds(conn, ["short", "long", "none"]) == 90.0
        assert alarm_store.bake_seconds(conn, ["short", "missing"]) == 5.0
        assert alarm_store.bake_seconds(conn, ["none"]) == 0.0
        assert alarm_store.bake_seconds(conn, ["missing"]) == 0.0
        assert alarm_store.bake_seconds(conn, []) == 0.0


# --- the CLI ------------------------------------------------------------------------------


def shipyard(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(server.data_dir / "credentials"),
        "AWS_CONFIG_FILE": str(server.data_dir / "no-config"),
        "SHIPYARD_ENDPOINT": server.url,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_put_list_delete(server: LiveServer) -> None:
    put = shipyard(
        server, "alarm", "put", "errors", "--prometheus", "http://prom:9090",
        "--query", "app_errors", "--threshold", "2", "--bake", "30",
    )  # fmt: skip
    assert put.returncode == 0, put.stderr
    assert put.stdout.strip() == (
        "Saved alarm errors (prometheus): app_errors (> 2) at http://prom:9090; bake time 30s"
    )
    put = shipyard(server, "alarm", "put", "health", "--http", "http://app/health")
    assert put.returncode == 0, put.stderr
    listed = shipyard(server, "alarm", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "NAME    KIND        CHECK                                 BAKE",
        "errors  prometheus  app_errors (> 2) at http://prom:9090  30s",
        "health  http        GET http://app/health answers 200     -",
    ]
    deleted = shipyard(server, "alarm", "delete", "errors")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "Deleted alarm errors")
    again = shipyard(server, "alarm", "delete", "errors")
    assert again.returncode == 4  # the server refused it
    assert again.stderr.strip() == (
        "shipyard: error: AlarmDoesNotExistException: No alarm named 'errors'"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["put", "a", "--prometheus", "http://p:9090"], "--prometheus needs --query"),
        (["put", "a", "--http", "http://x", "--query", "up"], "go with --prometheus"),
        (["put", "a", "--prometheus", "http://p", "--http", "http://x"], "not allowed with"),
        (["put", "a", "--query", "up"], "one of the arguments --prometheus --http is required"),
        (["put", "a", "--http", "http://x", "--bake", "-1"], "must not be negative"),
        (["put", "a", "--http", "ftp://x"], "InvalidAlarmConfigException: http.url"),
    ],
)
def test_cli_mistakes_are_one_line(
    shared_server: LiveServer,
    args: list[str],
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # In-process (the subprocess path is covered above): the same main() the script runs.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared_server.data_dir / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(shared_server.data_dir / "no-config"))
    code = cli.main(["--endpoint", shared_server.url, "alarm", *args])
    captured = capsys.readouterr()
    assert code in (2, 4)  # a usage mistake, or the server refused it
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("shipyard: error: ")
    assert words in lines[0]


# --- the watcher stopping a real deployment -----------------------------------------------


def start_waiting_deployment(
    server: LiveServer, alarm_configuration: dict[str, Any], **deployment: Any
) -> str:
    """A deployment to a registered host with no agent: it stays InProgress."""
    cd = server.client("codedeploy")
    cd.register_on_premises_instance(
        instanceName="web-1", iamUserArn="arn:aws:iam::000000000000:user/shipyard/web-1"
    )
    cd.add_tags_to_on_premises_instances(
        instanceNames=["web-1"], tags=[{"Key": "role", "Value": "web"}]
    )
    cd.create_application(applicationName="shop", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        alarmConfiguration=alarm_configuration,
    )
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "acme/shop", "commitId": "a" * 40},
    }
    return str(
        cd.create_deployment(
            applicationName="shop", deploymentGroupName="web", revision=revision, **deployment
        )["deploymentId"]
    )


def deployment_info(server: LiveServer, deployment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = server.client("codedeploy").get_deployment(deploymentId=deployment_id)[
        "deploymentInfo"
    ]
    return info


def test_watcher_stops_a_deployment_when_its_http_alarm_fires(
    server: LiveServer, stub: Stub
) -> None:
    stub.answers["/health"] = Answer(200)
    call(server, "ShipyardPutAlarm", {"alarmName": "health", "http": {"url": stub.url + "/health"}})
    deployment_id = start_waiting_deployment(
        server, {"enabled": True, "alarms": [{"name": "health"}]}
    )
    # The alarm is read while the deployment runs, and OK changes nothing.
    wait_until(lambda: stub.hit_count("/health") >= 3, "three reads of the alarm", 10)
    assert deployment_info(server, deployment_id)["status"] == "InProgress"
    stub.answers["/health"] = Answer(500, b"boom")
    wait_until(
        lambda: deployment_info(server, deployment_id)["status"] == "Stopped", "the stop", 10
    )
    error = deployment_info(server, deployment_id)["errorInformation"]
    assert error["code"] == "ALARM_ACTIVE"
    assert "health" in error["message"]
    assert "answered 500, expected 200" in error["message"]


def test_unreadable_alarm_stops_unless_poll_failures_are_ignored(
    server: LiveServer, stub: Stub
) -> None:
    stub.answers["/health"] = Answer(200)
    call(server, "ShipyardPutAlarm", {"alarmName": "health", "http": {"url": stub.url + "/health"}})
    call(
        server,
        "ShipyardPutAlarm",
        {"alarmName": "errors", "prometheus": {"url": dead_url(), "query": "up"}},
    )
    config = {
        "enabled": True,
        "ignorePollAlarmFailure": True,
        "alarms": [{"name": "errors"}, {"name": "health"}, {"name": "undefined"}],
    }
    deployment_id = start_waiting_deployment(server, config)
    wait_until(lambda: stub.hit_count("/health") >= 3, "several rounds reading every alarm", 10)
    assert deployment_info(server, deployment_id)["status"] == "InProgress"
    cd = server.client("codedeploy")
    cd.stop_deployment(deploymentId=deployment_id)
    wait_until(
        lambda: deployment_info(server, deployment_id)["status"] == "Stopped", "the stop", 10
    )

    # Without ignorePollAlarmFailure an alarm this server does not define would stop
    # every deployment at once: CreateDeployment refuses it (test_groups covers that).
    defined = [{"name": "errors"}, {"name": "health"}]
    cd.update_deployment_group(
        applicationName="shop",
        currentDeploymentGroupName="web",
        alarmConfiguration={**config, "alarms": defined, "ignorePollAlarmFailure": False},
    )
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "acme/shop", "commitId": "b" * 40},
    }
    second = cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )["deploymentId"]
    wait_until(lambda: deployment_info(server, second)["status"] == "Stopped", "the stop", 10)
    error = deployment_info(server, second)["errorInformation"]
    assert error["code"] == "ALARM_ACTIVE"
    assert error["message"].startswith("Alarm errors is active: its state cannot be read: ")
    assert "cannot reach Prometheus" in error["message"]


def test_override_alarm_configuration_replaces_the_groups(server: LiveServer, stub: Stub) -> None:
    stub.answers["/health"] = Answer(500)  # the group's alarm is firing
    stub.answers["/ready"] = Answer(200)
    call(server, "ShipyardPutAlarm", {"alarmName": "health", "http": {"url": stub.url + "/health"}})
    call(server, "ShipyardPutAlarm", {"alarmName": "ready", "http": {"url": stub.url + "/ready"}})
    deployment_id = start_waiting_deployment(
        server,
        {"enabled": True, "alarms": [{"name": "health"}]},
        overrideAlarmConfiguration={"enabled": True, "alarms": [{"name": "ready"}]},
    )
    wait_until(lambda: stub.hit_count("/ready") >= 3, "three reads of the alarm", 10)
    assert deployment_info(server, deployment_id)["status"] == "InProgress"
    assert stub.hit_count("/health") == 0
