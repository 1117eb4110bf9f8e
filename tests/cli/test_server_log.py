"""``shipyard server --log-format json``: the server logs its work (a deployment created,
an agent gone silent, the deployment's end and why) as one JSON object per line; and a
server lost while ``status --watch`` follows is its own exit code (3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.cli.server_process import ServerProcess, server_process
from tests.support import wait_until
from tests.test_cli import shipyard


def deploy_to_a_silent_host(server: ServerProcess, tmp_path: Path) -> str:
    """A deployment to one registered host whose agent never runs; returns its id."""
    steps = [
        ["app", "create", "shop"],
        ["group", "create", "shop", "web", "--tag", "role=web"],
        ["instance", "register", "web-1", "--tag", "role=web",
         "--agent-config", str(tmp_path / "agent.yml")],
    ]  # fmt: skip
    for step in steps:
        assert shipyard(*step, env=server.env).returncode == 0
    source = tmp_path / "app"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    pushed = shipyard(
        "push", "--application", "shop", "--source", str(source), "--bucket", "rel",
        "--key", "v1.zip", env=server.env,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    deployed = shipyard(
        "deploy", "--application", "shop", "--group", "web", "--bucket", "rel",
        "--key", "v1.zip", "--no-wait", env=server.env,
    )  # fmt: skip
    return deployed.stdout.strip()


def test_the_server_logs_deployments_and_silent_agents_as_json(tmp_path: Path) -> None:
    with server_process(tmp_path, "--agent-timeout", "1", "--log-format", "json") as server:
        deployment_id = deploy_to_a_silent_host(server, tmp_path)

        def records() -> list[dict[str, str]]:
            return [json.loads(line) for line in server.log.read_text().splitlines()]

        def ended() -> bool:
            return any("Failed after" in r["message"] for r in records())

        wait_until(ended, lambda: server.log.read_text(), 30)
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


def test_a_server_lost_while_following_exits_3(tmp_path: Path) -> None:
    with server_process(tmp_path, "--agent-timeout", "600") as server:
        deployment_id = deploy_to_a_silent_host(server, tmp_path)
        watcher = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "status", deployment_id, "--watch"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watcher.stdout is not None
        first = watcher.stdout.readline()  # it is following
        assert first.startswith("[") and deployment_id in first, first
        server.process.kill()
        server.process.wait(timeout=20)
        _, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Shipyard at" in lines[0], err
