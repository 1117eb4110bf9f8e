"""PollHostCommand records the agent's last contact, without a write on every poll."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.agent.client import CommandClient
from shipyard.config import ServerConfig
from shipyard.server.agent_protocol import heartbeat_interval, spread_hold
from shipyard.server.context import Services
from shipyard.server.main import build_services
from shipyard.store import host_contact, schema
from shipyard.store.instances import register_instance
from tests.conftest import LiveServer
from tests.support import issued_agent_config, last_seen, wait_until

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


def _refreshed_since(server: LiveServer, since: float, below: float) -> float | None:
    seen = last_seen(server, NAME)
    return seen if seen is not None and since <= seen < below else None


def test_a_stale_contact_is_refreshed_within_a_second_of_the_poll(
    live_server: LiveServer, codedeploy: Any, tmp_path: Path
) -> None:
    """The routine refresh is not the poll's own write: the polls of each second are
    written together by the sweeper (``runner/contacts.py``)."""
    agent = _agent(live_server, codedeploy, tmp_path)
    agent.poll_host_command()  # the first contact, written at once
    now = live_server.services.clock()
    interval = heartbeat_interval(live_server.services.config.agent_timeout)
    _set_last_seen(live_server, now - interval - 1)
    agent.poll_host_command()
    wait_until(lambda: _refreshed_since(live_server, now, now + 60), "the refresh", 5.0)
    # A last_seen in the future (the clock went back) is rewritten, not trusted.
    _set_last_seen(live_server, now + 3600)
    agent.poll_host_command()
    wait_until(lambda: _refreshed_since(live_server, now, now + 60), "the rewrite", 5.0)
    agent.close()


def test_an_agent_back_from_silence_is_recorded_by_its_poll(
    live_server: LiveServer, codedeploy: Any, tmp_path: Path
) -> None:
    """Past the agent timeout the contact is news (the sweeper may be about to fail the
    host): the poll writes it in its own transaction, before it answers."""
    agent = _agent(live_server, codedeploy, tmp_path)
    agent.poll_host_command()
    now = live_server.services.clock()
    _set_last_seen(live_server, now - live_server.services.config.agent_timeout - 10)
    agent.poll_host_command()
    assert _refreshed_since(live_server, now, now + 60) is not None
    agent.close()


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    """Services with no server running: nothing but the test writes contacts."""
    built = build_services(ServerConfig(data_dir=tmp_path / "server", database=db_url))
    yield built
    built.db.close()


def test_the_polls_of_a_second_are_written_together(services: Services) -> None:
    names = ("batch-1", "batch-2", "batch-3")
    with services.db.tx() as conn:
        for name in names:
            arn = f"arn:aws:iam::000000000000:user/{name}"
            register_instance(
                conn, name=name, arn_member="iamUserArn", iam_arn=arn, instance_arn=arn, now=1.0
            )
    contacts = services.runner.agents.contacts
    for name in names:
        contacts.note(name, 100.0)
    contacts.note("batch-3", 100.5)  # a later poll of the same agent
    assert contacts.write() == 3
    # Each is the earliest poll of the batch: late by under a second, never ahead.
    with services.db.tx() as conn:
        for name in names:
            row = host_contact.host_row(conn, name)
            assert row is not None and row.last_seen == 100.0
    assert contacts.write() == 0  # nothing noted since


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
