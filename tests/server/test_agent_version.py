"""PollHostCommand records what the agent says it is, writing only when that changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from shipyard.agent.client import REPORTED_VERSION, CommandClient, ProtocolError
from shipyard.server.agent_protocol import MAX_VERSION_CHARS, reported_version
from shipyard.server.context import Call, Principal
from shipyard.store import schema
from tests.conftest import LiveServer
from tests.support import call_extension, instance_updates, issued_agent_config

NAME = "versioned-1"


@pytest.fixture
def agent(live_server: LiveServer, codedeploy: Any, tmp_path: Path) -> Iterator[CommandClient]:
    arn = f"arn:aws:iam::000000000000:user/{NAME}"
    codedeploy.register_on_premises_instance(instanceName=NAME, iamUserArn=arn)
    config = issued_agent_config(live_server, NAME, tmp_path, poll_seconds=0.0)
    client = CommandClient(config)
    yield client
    client.close()


def _stored(server: LiveServer) -> str | None:
    c = schema.instances.c
    with server.services.db.tx() as conn:
        value = conn.execute(select(c.agent_version).where(c.name == NAME)).scalar_one()
    return None if value is None else str(value)


def _poll(agent: CommandClient, **members: Any) -> None:
    body = {"HostIdentifier": f"arn:aws:iam::000000000000:user/{NAME}", "ShipyardPollSeconds": 0}
    agent.call("PollHostCommand", {**body, **members})


def test_the_version_is_stored_once_and_again_only_when_it_changes(
    live_server: LiveServer, agent: CommandClient
) -> None:
    assert _stored(live_server) is None
    agent.poll_host_command()
    assert _stored(live_server) == REPORTED_VERSION
    updates = instance_updates(live_server)
    for _ in range(3):  # within the heartbeat interval: nothing to write
        agent.poll_host_command()
    assert updates == []
    _poll(agent, ShipyardAgentVersion="shipyard 9.9.9 (Python 3.13.0)")
    assert _stored(live_server) == "shipyard 9.9.9 (Python 3.13.0)"
    assert len(updates) == 1
    # A Shipyard agent from before the member is known by its header.
    _poll(agent)
    assert _stored(live_server) == "shipyard 0.1.0"


@pytest.mark.parametrize(
    "value",
    [42, "", " padded", "line\nbreak", "bell\x07", "x" * (MAX_VERSION_CHARS + 1)],
)
def test_a_bad_version_is_refused_and_the_stored_one_kept(
    live_server: LiveServer, agent: CommandClient, value: Any
) -> None:
    agent.poll_host_command()
    with pytest.raises(ProtocolError) as refused:
        _poll(agent, ShipyardAgentVersion=value)
    assert refused.value.code == "ClientException"
    assert "ShipyardAgentVersion" in refused.value.message
    assert _stored(live_server) == REPORTED_VERSION


def _from_header(value: str) -> str | None:
    principal = Principal("instance", NAME)
    headers = {"x-amz-codedeploy-agent-version": value}
    return reported_version(Call(cast(Any, None), principal, {}, headers))


def test_the_stock_agent_is_known_by_its_version_header() -> None:
    assert _from_header("OFFICIAL_1.8.1-12_deb") == "codedeploy-agent OFFICIAL_1.8.1-12_deb"
    assert _from_header("UNKNOWN_VERSION") == "codedeploy-agent (version unknown)"
    assert _from_header("shipyard-0.1.0") == "shipyard 0.1.0"
    # Not the agent's bug to refuse a poll over: cut to fit, or not recorded.
    long = _from_header("v" * 500)
    assert long is not None and len(long) == MAX_VERSION_CHARS
    assert _from_header("bad\x00value") is None
    assert _from_header("") is None


def test_a_re_registered_instance_starts_as_never_connected(
    live_server: LiveServer, codedeploy: Any, agent: CommandClient
) -> None:
    agent.poll_host_command()
    codedeploy.deregister_on_premises_instance(instanceName=NAME)
    codedeploy.register_on_premises_instance(
        instanceName=NAME, iamUserArn="arn:aws:iam::000000000000:user/other-host"
    )
    answer = call_extension(live_server, "ShipyardListInstanceStatus", {})
    (entry,) = answer["instances"]
    assert (entry["agentState"], entry["agentVersion"]) == ("never-connected", None)
