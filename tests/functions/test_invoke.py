"""Invoke through real worker processes: runtimes, errors, timeouts, limits, weights."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import tempfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, start_live_server
from tests.e2e.conftest import wait_until
from tests.functions.conftest import ROLE, package, python_function

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"


def payload(answer: dict[str, Any]) -> Any:
    return json.loads(answer["Payload"].read())


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the worker user can write to (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="shipyard-fn-test-"))
    path.chmod(0o777)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


def test_request_response_with_versions_and_aliases(lam: Any) -> None:
    python_function(lam, "echo", Publish=True)
    answer = lam.invoke(FunctionName="echo", Payload=b'{"n": 1}')
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    body = payload(answer)
    assert body["event"] == {"n": 1} and body["version"] == "$LATEST"
    assert body["arn"] == ARN + "echo"

    lam.create_alias(FunctionName="echo", Name="live", FunctionVersion="1")
    answer = lam.invoke(FunctionName="echo", Qualifier="live", Payload=b"{}")
    assert answer["ExecutedVersion"] == "1"
    assert payload(answer)["arn"] == ARN + "echo:live"
    answer = lam.invoke(FunctionName=ARN + "echo:1")
    assert answer["ExecutedVersion"] == "1"
    assert answer["ResponseMetadata"]["RequestId"] == payload(answer)["request_id"]


def test_log_tail(lam: Any) -> None:
    source = "def handler(event, context):\n    print('hello from', context.aws_request_id)\n"
    python_function(lam, "talker", source)
    for _ in range(2):  # cold, then warm
        answer = lam.invoke(FunctionName="talker", LogType="Tail")
        request_id = answer["ResponseMetadata"]["RequestId"]
        log = base64.b64decode(answer["LogResult"]).decode()
        assert f"START RequestId: {request_id} Version: $LATEST" in log
        assert f"hello from {request_id}" in log
        assert f"REPORT RequestId: {request_id}" in log


def test_dry_run_and_event(server: LiveServer, lam: Any, shared_dir: Path) -> None:
    source = (
        "import pathlib\n"
        "def handler(event, context):\n"
        "    pathlib.Path(event['path']).write_text(context.aws_request_id)\n"
    )
    python_function(lam, "writer", source)
    host = server.services.function_host
    assert host is not None
    marker = shared_dir / "ran"
    dry = lam.invoke(
        FunctionName="writer", InvocationType="DryRun", Payload=json.dumps({"path": str(marker)})
    )
    assert dry["StatusCode"] == 204 and host.cold_starts == 0
    event = lam.invoke(
        FunctionName="writer", InvocationType="Event", Payload=json.dumps({"path": str(marker)})
    )
    assert event["StatusCode"] == 202
    wait_until(marker.exists, "the event invocation ran")


def test_handler_error_init_error_and_bad_payloads(lam: Any) -> None:
    python_function(lam, "fails", "def handler(event, context):\n    raise ValueError('no')\n")
    answer = lam.invoke(FunctionName="fails")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    error = payload(answer)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no")

    lam.create_function(
        FunctionName="missing",
        Runtime="python3.11",
        Role=ROLE,
        Handler="nowhere.handler",
        Code={"ZipFile": package({"app.py": "x = 1\n"})},
    )
    answer = lam.invoke(FunctionName="missing")
    assert answer["FunctionError"] == "Unhandled"
    assert payload(answer)["errorType"] == "Runtime.ImportModuleError"

    for body, code in (
        (b"{not json", "InvalidRequestContentException"),
        (b'"' + b"x" * (6 * 1024 * 1024) + b'"', "RequestTooLargeException"),
    ):
        with pytest.raises(ClientError) as exc:
            lam.invoke(FunctionName="fails", Payload=body)
        assert exc.value.response["Error"]["Code"] == code


def test_timeout_kills_the_worker(server: LiveServer, lam: Any) -> None:
    source = (
        "import time\n"
        "def handler(event, context):\n"
        "    if event.get('hang'):\n"
        "        time.sleep(600)\n"
        "    return 'fine'\n"
    )
    python_function(lam, "slow", source, Timeout=1)
    answer = lam.invoke(FunctionName="slow", Payload=b'{"hang": true}')
    assert answer["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in payload(answer)["errorMessage"]
    host = server.services.function_host
    assert host is not None and host.worker_count == 0
    assert payload(lam.invoke(FunctionName="slow")) == "fine"


def test_concurrency_limit_answers_429(server: LiveServer, lam: Any, shared_dir: Path) -> None:
    release = shared_dir / "release"
    source = (
        "import os, time\n"
        "def handler(event, context):\n"
        f"    while not os.path.exists({str(release)!r}):\n"
        "        time.sleep(0.01)\n"
        "    return 'released'\n"
    )
    python_function(lam, "held", source, Timeout=60)
    host = server.services.function_host
    assert host is not None
    limit = server.services.config.functions_max_function_concurrency
    results: list[Any] = []

    def invoke() -> None:
        results.append(payload(server.client("lambda").invoke(FunctionName="held")))

    threads = [threading.Thread(target=invoke) for _ in range(limit)]
    for thread in threads:
        thread.start()
    wait_until(lambda: host.busy == limit, "every slot taken")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="held")
    assert exc.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    release.write_text("go")
    for thread in threads:
        thread.join(timeout=60)
    assert results == ["released"] * limit


def test_environment(server: LiveServer, lam: Any) -> None:
    source = (
        "import os\n"
        "def handler(event, context):\n"
        "    return {'env': dict(os.environ), 'uid': os.getuid(), 'cwd': os.getcwd()}\n"
    )
    python_function(
        lam, "env", source, MemorySize=512, Environment={"Variables": {"COLOUR": "blue"}}
    )
    body = payload(lam.invoke(FunctionName="env"))
    env = body["env"]
    assert env["COLOUR"] == "blue"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "env"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["_HANDLER"] == "app.handler"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["AWS_ENDPOINT_URL"] == server.url
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA")
    assert env["AWS_ACCESS_KEY_ID"] != server.access_key_id
    if os.geteuid() == 0:
        assert body["uid"] == 65534  # nobody


BOOTSTRAP = """#!/bin/sh
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d: -f2 | tr -d '[:space:]')
  rm -f "$headers"
  if [ "$event" = '{"fail":true}' ]; then
    curl -sS -X POST "$api/invocation/$id/error" \\
      -d '{"errorMessage":"asked to fail","errorType":"Shell.Failure"}' >/dev/null
  else
    curl -sS -X POST "$api/invocation/$id/response" \\
      -d "{\\"echo\\":$event,\\"handler\\":\\"$_HANDLER\\"}" >/dev/null
  fi
done
"""


def test_provided_runtime_runs_its_bootstrap(lam: Any) -> None:
    lam.create_function(
        FunctionName="shell",
        Runtime="provided.al2023",
        Role=ROLE,
        Handler="function.handler",
        Code={"ZipFile": package({"bootstrap": BOOTSTRAP})},
    )
    answer = lam.invoke(FunctionName="shell", Payload=b'{"x":1}')
    assert payload(answer) == {"echo": {"x": 1}, "handler": "function.handler"}
    answer = lam.invoke(FunctionName="shell", Payload=b'{"fail":true}')
    assert answer["FunctionError"] == "Unhandled"
    assert payload(answer)["errorType"] == "Shell.Failure"


def test_weighted_alias_split(server: LiveServer, lam: Any) -> None:
    python_function(lam, "split", "def handler(event, context):\n    return 1\n", Publish=True)
    lam.update_function_configuration(FunctionName="split", Description="v2")
    lam.update_function_configuration(FunctionName="split", Timeout=4)
    lam.publish_version(FunctionName="split")
    lam.create_alias(
        FunctionName="split",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
    )
    host = server.services.function_host
    assert host is not None
    host.rng = random.Random(20261204)
    runs = 1000
    seen = Counter(
        lam.invoke(FunctionName="split", Qualifier="live")["ExecutedVersion"] for _ in range(runs)
    )
    assert set(seen) == {"1", "2"}
    assert abs(seen["2"] / runs - 0.1) < 0.03, seen


def test_host_wide_limit_spans_functions(tmp_path: Path, shared_dir: Path) -> None:
    release = shared_dir / "release"
    source = (
        "import os, time\n"
        "def handler(event, context):\n"
        f"    while not os.path.exists({str(release)!r}):\n"
        "        time.sleep(0.01)\n"
        "    return 'released'\n"
    )
    servers = start_live_server(
        tmp_path / "server", functions_max_concurrency=2, functions_max_function_concurrency=2
    )
    server = next(servers)
    try:
        lam = server.client("lambda")
        for name in ("first", "second", "third"):
            python_function(lam, name, source, Timeout=60)
        host = server.services.function_host
        assert host is not None
        results: list[Any] = []
        threads = [
            threading.Thread(
                target=lambda n=name: results.append(
                    payload(server.client("lambda").invoke(FunctionName=n))
                )
            )
            for name in ("first", "second")
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: host.busy == 2, "both slots taken")
        with pytest.raises(ClientError) as exc:
            lam.invoke(FunctionName="third")
        assert exc.value.response["Error"]["Code"] == "TooManyRequestsException"
        release.write_text("go")
        for thread in threads:
            thread.join(timeout=60)
        assert results == ["released", "released"]
        # With room again, the third runs (a worker of another function makes way).
        assert payload(lam.invoke(FunctionName="third")) == "released"
        assert host.worker_count <= 2
    finally:
        servers.close()


def test_provided_runtime_without_a_bootstrap_is_a_function_error(lam: Any) -> None:
    lam.create_function(
        FunctionName="no-bootstrap",
        Runtime="provided",
        Role=ROLE,
        Code={"ZipFile": package({"main.sh": "#!/bin/sh\n"})},
    )
    answer = lam.invoke(FunctionName="no-bootstrap")
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    assert payload(answer)["errorType"].startswith("Runtime.")


def symlink_package(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        archive.writestr(info, target)
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    return buffer.getvalue()


def test_packages_that_would_escape_are_refused(lam: Any) -> None:
    escaping = package({"../escape.py": "x = 1\n", "app.py": "x = 1\n"})
    with pytest.raises(ClientError) as exc:
        lam.create_function(
            FunctionName="climber",
            Runtime="python3.11",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": escaping},
        )
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.list_functions()["Functions"] == []

    lam.create_function(
        FunctionName="linker",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": symlink_package("passwd", "../../../../../../etc/passwd")},
    )
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="linker")
    assert exc.value.response["Error"]["Code"] == "InvalidZipFileException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502


def test_updating_latest_keeps_published_versions_warm(server: LiveServer, lam: Any) -> None:
    python_function(lam, "warm", Publish=True)
    host = server.services.function_host
    assert host is not None
    lam.invoke(FunctionName="warm", Qualifier="1")
    lam.invoke(FunctionName="warm")
    assert host.cold_starts == 2
    lam.update_function_configuration(FunctionName="warm", Timeout=8)
    wait_until(lambda: host.worker_count == 1, "the $LATEST worker stopped")
    lam.invoke(FunctionName="warm", Qualifier="1")
    assert host.cold_starts == 2  # version 1's worker was reused
    lam.invoke(FunctionName="warm")
    assert host.cold_starts == 3  # $LATEST changed: a new worker


def test_events_wait_for_room_instead_of_failing(
    server: LiveServer, lam: Any, shared_dir: Path
) -> None:
    release = shared_dir / "release"
    source = (
        "import os, pathlib, time\n"
        "def handler(event, context):\n"
        f"    while not os.path.exists({str(release)!r}):\n"
        "        time.sleep(0.01)\n"
        f"    pathlib.Path({str(shared_dir)!r}, context.aws_request_id).write_text('x')\n"
    )
    python_function(lam, "queued", source, Timeout=60)
    limit = server.services.config.functions_max_function_concurrency
    for _ in range(limit + 2):
        assert lam.invoke(FunctionName="queued", InvocationType="Event")["StatusCode"] == 202
    host = server.services.function_host
    assert host is not None
    wait_until(lambda: host.busy == limit, "the first events running")
    release.write_text("go")
    wait_until(lambda: len(list(shared_dir.iterdir())) == 1 + limit + 2, "every event ran")
