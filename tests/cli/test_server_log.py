"""``shipyard server --log-format json``: the server logs its work (a deployment created,
an agent gone silent, the deployment's end and why) as one JSON object per line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.support import wait_until
from tests.test_cli import cli_env, shipyard, wait_for_port


def test_the_server_logs_deployments_and_silent_agents_as_json(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(data_dir=data_dir)
    env["SHIPYARD_ENDPOINT"] = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.err"
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "server", "--data-dir", str(data_dir),
             "--port", str(port), "--agent-timeout", "1", "--log-format", "json"],
            env=env, stdout=subprocess.DEVNULL, stderr=log_file, text=True,
        )  # fmt: skip
    try:
        wait_for_port(port, server)
        steps = [
            ["app", "create", "shop"],
            ["group", "create", "shop", "web", "--tag", "role=web"],
            ["instance", "register", "web-1", "--tag", "role=web",
             "--agent-config", str(tmp_path / "agent.yml")],
        ]  # fmt: skip
        for step in steps:
            assert shipyard(*step, env=env).returncode == 0
        source = tmp_path / "app"
        source.mkdir()
        (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
        pushed = shipyard(
            "push", "--application", "shop", "--source", str(source), "--bucket", "rel",
            "--key", "v1.zip", env=env,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr
        deployed = shipyard(
            "deploy", "--application", "shop", "--group", "web", "--bucket", "rel",
            "--key", "v1.zip", "--no-wait", env=env,
        )  # fmt: skip
        deployment_id = deployed.stdout.strip()

        def records() -> list[dict[str, str]]:
            return [json.loads(line) for line in log_path.read_text().splitlines()]

        def ended() -> bool:
            return any("Failed after" in r["message"] for r in records())

        wait_until(ended, lambda: log_path.read_text(), 30)
    finally:
        server.terminate()
        server.wait(timeout=20)
    found = {(r["level"], r["logger"], r["message"].split(":")[0]) for r in records()}
    assert ("INFO", "shipyard.runner", f"deployment {deployment_id} created") in found
    assert any(
        level == "WARNING" and message.startswith("agent of web-1 silent for")
        for level, _, message in found
    )
    failed = next(r for r in records() if "Failed after" in r["message"])
    assert failed["level"] == "WARNING"
    assert failed["message"].startswith(f"deployment {deployment_id} Failed after")
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records())
