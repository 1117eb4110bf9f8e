"""The Lambda API through the real AWS CLI (``aws lambda ... --endpoint-url``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import LiveServer
from tests.functions.conftest import ECHO, ROLE, package

AWS_CLI = Path(sys.executable).parent / "aws"


def aws(server: LiveServer, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AWS_CLI), "lambda", *args, "--endpoint-url", server.url, "--output", "json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def aws_json(server: LiveServer, *args: str) -> Any:
    return json.loads(aws(server, *args).stdout or "{}")


def test_functions_versions_aliases_and_invoke_through_the_cli(
    server: LiveServer, tmp_path: Path
) -> None:
    zipped = tmp_path / "echo.zip"
    zipped.write_bytes(package({"app.py": ECHO}))
    created = aws_json(
        server,
        *("create-function", "--function-name", "cli-echo", "--runtime", "python3.11"),
        *("--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{zipped}"),
        "--publish",
    )
    assert created["Version"] == "1"
    aws_json(
        server, "update-function-configuration", "--function-name", "cli-echo", "--timeout", "7"
    )
    assert aws_json(server, "publish-version", "--function-name", "cli-echo")["Version"] == "2"
    alias = aws_json(
        server,
        *("create-alias", "--function-name", "cli-echo", "--name", "live"),
        *("--function-version", "1", "--routing-config", "AdditionalVersionWeights={2=0.5}"),
    )
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.5}}
    out = tmp_path / "out.json"
    answer = aws_json(
        server,
        *("invoke", "--function-name", "cli-echo", "--qualifier", "live"),
        *("--payload", '{"from": "cli"}', str(out)),
    )
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] in ("1", "2")
    assert json.loads(out.read_text())["event"] == {"from": "cli"}
    listed = aws_json(server, "list-versions-by-function", "--function-name", "cli-echo")
    assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "1", "2"]

    refused = aws(server, "get-alias", "--function-name", "cli-echo", "--name", "nope", ok=False)
    assert "ResourceNotFoundException" in refused.stderr
    refused = aws(
        server,
        *("update-alias", "--function-name", "cli-echo", "--name", "live"),
        *("--routing-config", "AdditionalVersionWeights={2=1.5}"),
        ok=False,
    )
    assert "InvalidParameterValueException" in refused.stderr
    assert aws_json(server, "get-alias", "--function-name", "cli-echo", "--name", "live")[
        "RoutingConfig"
    ] == {"AdditionalVersionWeights": {"2": 0.5}}
    aws(server, "delete-function", "--function-name", "cli-echo")
    assert aws_json(server, "list-functions")["Functions"] == []
