"""PollHostCommand records the agent's last contact, without a write on every poll."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.agent.client import CommandClient
from shipyard.server.agent_protocol import heartbeat_interval, spread_hold
from shipyard.store import schema
from tests.conftest import LiveServer
from tests.support import issued_agent_config, last_seen

NAME = "heartbeat-1"


def _agent(server: LiveServer, codedeploy: Any, tmp_path: Path) -> CommandClient:
    arn = f"arn:aws:iam::000000000000:user/{NAME}"
    codedeploy.register_on_premises_instance(instanceName=NAME, iamUserArn=arn)
    config = issued_agent_config(
        server,
        NAME,
        tmp_path,
        poll_seconds=0.0,  # the server answers at once
    )
    return CommandClient(config)


def _set_last_seen(server: LiveServer, value: float) -> None:
    c = schema.instances.c
    with server.services.db.tx() as conn:
        conn.execute(schema.instances.update().where(c.name == NAME).values(last_seen=value))


def test_the_first_poll_records_the_contact_and_a_quick_second_one_writes_nothing(
    live_server: LiveServer, codedeploy: Any, tmp_path: Path
) -> None:
    agent = _agent(live_server, codedeploy, tmp_path)
    assert last_seen(live_server, NAME) is None
    assert agent.poll_host_command() is None
    first = last_seen(live_server, NAME)
    assert first is not None
    assert agent.poll_host_command() is None
    assert last_seen(live_server, NAME) == first
    agent.close()


def test_a_stale_contact_is_refreshed_by_the_next_poll(
    live_server: LiveServer, codedeploy: Any, tmp_path: Path
) -> None:
    agent = _agent(live_server, codedeploy, tmp_path)
    now = live_server.services.clock()
    interval = heartbeat_interval(live_server.services.config.agent_timeout)
    _set_last_seen(live_server, now - interval - 1)
    agent.poll_host_command()
    refreshed = last_seen(live_server, NAME)
    assert refreshed is not None and refreshed >= now
    # A last_seen in the future (the clock went back) is rewritten, not trusted.
    _set_last_seen(live_server, now + 3600)
    agent.poll_host_command()
    rewritten = last_seen(live_server, NAME)
    assert rewritten is not None and rewritten < now + 3600
    agent.close()


def test_the_interval_stays_well_within_the_agent_timeout() -> None:
    assert heartbeat_interval(60.0) == 5.0
    assert heartbeat_interval(2.0) == 0.5


def test_each_instance_holds_its_polls_for_a_period_of_its_own() -> None:
    """Agents started together must not all poll again in the same instant."""
    holds = [spread_hold(50.0, f"host-{i}") for i in range(200)]
    assert all(40.0 <= hold <= 50.0 for hold in holds)
    assert len({round(hold, 3) for hold in holds}) > 150  # spread out, not bunched
    assert max(holds) - min(holds) > 8.0
    assert spread_hold(50.0, "host-7") == spread_hold(50.0, "host-7")
    assert spread_hold(0.0, "host-7") == 0.0
