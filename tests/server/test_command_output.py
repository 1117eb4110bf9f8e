"""Script output a host may store (issue 10, finding 7): PostHostCommandUpdate on a
finished command is refused, the HostIdentifier is checked, and a command's stored
output is capped, keeping its first and last parts and saying what was cut.

The attack, with Shipyard's agent client against a live server: 1 MiB updates, sent
again and again, to a finished command and to a running one, in another host's name.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, inspect, select

from shipyard.agent.client import CommandClient, ProtocolError
from shipyard.config import DEFAULT_MAX_COMMAND_OUTPUT_BYTES
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import open_database, schema
from shipyard.store.migrations import MIGRATIONS, current_version, migrate
from tests.agent.test_client import queue_command
from tests.conftest import LiveServer, start_live_server
from tests.support import call_extension, issued_agent_config

MiB = 1024 * 1024
DEPLOYMENT = "d-PROTOCOL1"  # queue_command's
BIG_LOG = "x" * (MiB - 16)  # the most one update's payload may carry


def started(tmp_path: Path, db_url: str, **overrides: Any) -> Any:
    return contextlib.contextmanager(start_live_server)(
        tmp_path / "server", database=db_url, poll_seconds=0.3, **overrides
    )


def agent(server: LiveServer, tmp_path: Path, name: str) -> CommandClient:
    arn = f"arn:aws:iam::000000000000:user/{name}"
    server.client().register_on_premises_instance(instanceName=name, iamUserArn=arn)
    return CommandClient(issued_agent_config(server, name, tmp_path / name))


def running_command(server: LiveServer, host: CommandClient, name: str) -> str:
    queue_command(server, name)
    command = host.poll_host_command()
    assert command is not None
    assert host.acknowledge(command.command_id, is_noop=False) == "InProgress"
    return command.command_id


def update(host: CommandClient, command_id: str, log: str, **members: Any) -> Any:
    body = {
        "HostCommandIdentifier": command_id,
        "Diagnostics": {"Format": "JSON", "Payload": json.dumps({"log": log})},
        **members,
    }
    return host.call("PostHostCommandUpdate", body)


def stored_bytes(server: LiveServer) -> int:
    column = schema.event_logs.c.chunk
    with server.services.db.tx() as conn:
        total = conn.execute(select(func.sum(func.length(column)))).scalar_one()
    return int(total or 0)


def event_log(server: LiveServer, target: str) -> str:
    body = {"deploymentId": DEPLOYMENT, "targetId": target}
    events = call_extension(server, "ShipyardGetLifecycleEventLog", body)["events"]
    return "".join(e["log"] for e in events)


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[LiveServer]:
    with started(tmp_path, db_url) as live:
        yield live


def test_a_finished_command_takes_no_more_output(server: LiveServer, tmp_path: Path) -> None:
    host = agent(server, tmp_path, "web-1")
    command_id = running_command(server, host, "web-1")
    assert host.post_update(command_id, "the hook ran\n") == "InProgress"  # the agent's call
    host.complete(command_id, "Succeeded", {"error_code": 0, "log": ""})
    before = stored_bytes(server)
    for _ in range(20):
        with pytest.raises(ProtocolError, match="Succeeded: it takes no more output") as info:
            update(host, command_id, BIG_LOG)
        assert info.value.code == "ClientException"
    assert stored_bytes(server) == before
    assert event_log(server, "web-1") == "the hook ran\n"
    host.close()


def test_a_running_commands_output_is_capped_at_the_first_and_last_parts(
    server: LiveServer, tmp_path: Path
) -> None:
    host = agent(server, tmp_path, "web-1")
    command_id = running_command(server, host, "web-1")
    sent = [f"{i:04d}" + BIG_LOG[4:] for i in range(20)]  # 20 MiB, each MiB tagged
    for log in sent:
        assert update(host, command_id, log) == {"CommandStatus": "InProgress"}
    cap = DEFAULT_MAX_COMMAND_OUTPUT_BYTES
    assert stored_bytes(server) == cap
    whole = "".join(sent)
    cut = len(whole) - cap
    note = f"[... {cut} bytes cut ...]\n"
    assert event_log(server, "web-1") == whole[: cap // 2] + note + whole[-(cap - cap // 2) :]
    host.close()


def test_the_cut_falls_between_characters(tmp_path: Path, db_url: str) -> None:
    with started(tmp_path, db_url, max_command_output_bytes=9) as server:
        host = agent(server, tmp_path, "web-1")
        command_id = running_command(server, host, "web-1")
        for log in ["aé", "b€", "c", "😀d", "e"]:  # 1 + 2, 1 + 3, 1, 4 + 1, 1 bytes
            update(host, command_id, log)
        # The first 4 bytes ("aé" and "b"; "€" would not fit whole), then at most the
        # last 5 (the emoji's 4 cannot be split, so only "de" fits).
        assert event_log(server, "web-1") == "aéb[... 8 bytes cut ...]\nde"
        host.close()


def test_an_update_in_another_hosts_name_is_refused(server: LiveServer, tmp_path: Path) -> None:
    web, db = agent(server, tmp_path, "web-1"), agent(server, tmp_path, "db-1")
    command_id = running_command(server, web, "web-1")
    db_arn = "arn:aws:iam::000000000000:user/db-1"
    with pytest.raises(ProtocolError, match="does not belong to instance web-1") as info:
        update(web, command_id, "forged\n", HostIdentifier=db_arn)
    assert info.value.code == "ClientException"
    with pytest.raises(ProtocolError, match=f"Unknown host command {command_id}"):
        update(db, command_id, "forged\n")  # db-1's own key, web-1's command
    with pytest.raises(ProtocolError, match=f"Unknown host command {command_id}"):
        update(db, command_id, "forged\n", HostIdentifier=db_arn)
    web_arn = "arn:aws:iam::000000000000:user/web-1"
    assert update(web, command_id, "mine\n", HostIdentifier=web_arn) == {
        "CommandStatus": "InProgress"
    }
    assert event_log(server, "web-1") == "mine\n"
    web.close()
    db.close()


def test_an_older_database_gets_the_output_columns(db_url: str) -> None:
    """Migration step 3 on a database made before it (steps 1 and 2, the frozen first
    release's tables)."""
    box = AesGcmBox([new_key()])
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        migrate(conn, box, upto=2)
        conn.exec_driver_sql(
            "INSERT INTO event_logs (deployment_id, target_id, event, chunk, created) "
            "VALUES ('d-OLD', 'web-1', 'ApplicationStart', 'old output', 1.0)"
        )
    engine.dispose()
    database = open_database(db_url, box)
    with database.tx() as conn:
        assert current_version(conn) == len(MIGRATIONS)
        columns = {c["name"] for c in inspect(conn).get_columns("host_commands")}
        assert "output_bytes" in columns
        rows = conn.execute(select(schema.event_logs.c.chunk, schema.event_logs.c.cut_bytes))
        assert rows.all() == [("old output", None)]
    database.close()
