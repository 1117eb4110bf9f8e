"""The agent process refuses to start twice on one root directory or on one it cannot
write, and stops (instead of retrying forever) when the server rejects its key."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml

from shipyard.store import schema
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


def test_the_server_logs_an_agent_connecting_and_coming_back(
    e2e_server: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shipyard.agents")
    config_path = register_agent(e2e_server, tmp_path / "web-1", "web-1", {"role": "web"})
    with agent_processes() as start:
        agent = start(config_path)
        wait_until(lambda: last_seen(e2e_server, "web-1"), "the agent's first poll")
        assert "agent of web-1 connected for the first time" in caplog.messages
        # A silence: the agent stops, and once no poll of it is held (a held poll keeps
        # last_seen fresh, cluster/polls.py) the server last heard from it long ago.
        agent.kill()
        agent.wait()
        agents = e2e_server.services.runner.agents
        wait_until(lambda: "web-1" not in agents.polling(), "the held poll to end")
        instances = schema.instances
        with e2e_server.services.db.tx() as conn:
            seen = time.time() - 1000
            conn.execute(
                instances.update().where(instances.c.name == "web-1").values(last_seen=seen)
            )
        start(config_path)
        wait_until(
            lambda: any(m.startswith("agent of web-1 is back after") for m in caplog.messages),
            "the agent's next poll",
        )
    about = [m for m in caplog.messages if m.startswith("agent of web-1")]
    versions = [m for m in about if " reports version " in m]
    connects = [m for m in about if m not in versions]
    assert len(connects) == 2, connects  # not one line per poll
    assert len(versions) == 1, versions  # said once, when the version first appears
