"""The agent process refuses to start twice on one root directory or on one it cannot
write, and stops (instead of retrying forever) when the server rejects its key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.agent.test_loop import agent_processes, e2e_server, register_agent
from tests.conftest import LiveServer
from tests.support import last_seen, wait_until

__all__ = ["e2e_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e


def output_of(config_path: Path) -> str:
    return (config_path.parent / "agent.out").read_text()


def test_the_same_config_started_twice_refuses_the_second(
    e2e_server: LiveServer, tmp_path: Path
) -> None:
    config_path = register_agent(e2e_server, tmp_path / "web-1", "web-1", {"role": "web"})
    with agent_processes() as start:
        first = start(config_path)
        wait_until(lambda: last_seen(e2e_server, "web-1"), "the first agent's first poll")
        second = start(config_path)
        assert second.wait(timeout=30) == 1
        assert first.poll() is None, "the first agent keeps running"
    lines = [line for line in output_of(config_path).splitlines() if "already runs" in line]
    assert len(lines) == 1
    assert f"pid {first.pid}" in lines[0]
    assert "Traceback" not in output_of(config_path)


def test_a_root_dir_it_cannot_write_fails_at_start(e2e_server: LiveServer, tmp_path: Path) -> None:
    config_path = register_agent(e2e_server, tmp_path / "web-1", "web-1", {"role": "web"})
    config = yaml.safe_load(config_path.read_text())
    config["root_dir"] = "/proc/shipyard-agent-root"  # not writable, even for root
    config_path.write_text(yaml.safe_dump(config))
    with agent_processes() as start:
        assert start(config_path).wait(timeout=30) == 1
    output = output_of(config_path)
    assert "root directory /proc/shipyard-agent-root is not writable" in output
    assert "Traceback" not in output
    assert last_seen(e2e_server, "web-1") is None, "it stops before polling"


def test_a_revoked_key_stops_the_agent_with_a_clear_message(
    e2e_server: LiveServer, tmp_path: Path
) -> None:
    config_path = register_agent(e2e_server, tmp_path / "web-1", "web-1", {"role": "web"})
    with agent_processes() as start:
        agent = start(config_path)
        wait_until(lambda: last_seen(e2e_server, "web-1"), "the agent's first poll")
        e2e_server.client().deregister_on_premises_instance(instanceName="web-1")
        assert agent.wait(timeout=60) == 1
    output = output_of(config_path)
    assert "rejects this agent's key (UnrecognizedClientException)" in output
    assert output.count("rejects this agent's key") == 1
    assert "Traceback" not in output
