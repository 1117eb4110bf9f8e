"""Group commit: completions that arrive in one event-loop turn share a transaction,
and one that fails costs the others nothing (runner/group_commit.py).

The unit part runs GroupCommit on a real database (SQLite and PostgreSQL); the server
part completes many hosts' events at once through a real server, one of them with a
command that does not exist, and checks that every event ran exactly once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2.errors
import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import OperationalError

from shipyard.agent.client import CommandClient, HostCommand, ProtocolError
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.runner.after_commit import AfterCommit
from shipyard.runner.group_commit import GroupCommit
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import Database, open_database, resources, schema
from tests.conftest import LiveServer, on_both_databases
from tests.server.test_handed_commands import SUCCESS, _commands, _deploy
from tests.support import issued_agent_config

HOSTS = 6


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def _add_app(name: str, *, then_fail: bool = False) -> Callable[[Connection, AfterCommit], str]:
    def work(conn: Connection, after: AfterCommit) -> str:
        resources.insert_application(
            conn, name=name, application_id=f"id-{name}", compute_platform="Server", now=1.0
        )
        after.wake.add(name)
        if then_fail:
            raise ValueError(f"{name} fails after its write")
        return name

    return work


def _apps(db: Database) -> list[str]:
    a = schema.applications.c
    with db.tx() as conn:
        return sorted(conn.execute(select(a.name)).scalars())


def test_work_queued_in_one_turn_commits_once(db: Database) -> None:
    woken: list[set[str]] = []
    group: GroupCommit[str] = GroupCommit(db, lambda after: woken.append(after.wake))

    async def main() -> list[str]:
        return await asyncio.gather(*(group.run(_add_app(f"a{i}")) for i in range(5)))

    assert asyncio.run(main()) == [f"a{i}" for i in range(5)]
    assert group.batches == 1
    assert woken == [{f"a{i}" for i in range(5)}]  # one after-commit, for all of them
    assert _apps(db) == [f"a{i}" for i in range(5)]


def test_a_failing_piece_rolls_back_alone(db: Database) -> None:
    woken: list[set[str]] = []
    group: GroupCommit[str] = GroupCommit(db, lambda after: woken.append(after.wake))

    async def main() -> list[str | BaseException]:
        works = [_add_app("a0"), _add_app("bad", then_fail=True), _add_app("a2")]
        return await asyncio.gather(*(group.run(w) for w in works), return_exceptions=True)

    first, failed, last = asyncio.run(main())
    assert (first, last) == ("a0", "a2")
    assert isinstance(failed, ValueError)
    # The batch rolled back, then each ran alone: the good ones once, the bad one never.
    assert _apps(db) == ["a0", "a2"]
    assert woken == [{"a0"}, {"a2"}]
    assert group.batches == 2


def test_a_deadlock_victim_runs_again(db: Database) -> None:
    """What PostgreSQL does to one transaction of a lock cycle: it is rolled back whole,
    and run again instead of failing its request."""
    attempts: list[int] = []
    add = _add_app("again")

    def work(conn: Connection, after: AfterCommit) -> str:
        attempts.append(1)
        result = add(conn, after)
        if len(attempts) == 1:
            cycle = psycopg2.errors.DeadlockDetected("deadlock detected")
            raise OperationalError("SELECT ... FOR UPDATE", {}, cycle)
        return result

    group: GroupCommit[str] = GroupCommit(db, lambda after: None)
    assert asyncio.run(group.run(work)) == "again"
    assert len(attempts) == 2
    assert _apps(db) == ["again"]  # the first attempt's write was rolled back


def _host(server: LiveServer, tmp_path: Path, name: str, group: str) -> CommandClient:
    cd = server.client("codedeploy")
    cd.register_on_premises_instance(
        instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
    )
    cd.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": group, "Value": "y"}])
    return CommandClient(issued_agent_config(server, name, tmp_path / name, poll_seconds=5.0))


@on_both_databases
def test_hosts_completing_at_once_run_every_event_exactly_once(
    live_server: LiveServer, tmp_path: Path
) -> None:
    server, name = live_server, "together"
    hosts = [_host(server, tmp_path, f"together-{i}", name) for i in range(HOSTS)]
    cd = server.client("codedeploy")
    cd.create_application(applicationName=name)
    cd.create_deployment_group(
        applicationName=name,
        deploymentGroupName=name,
        serviceRoleArn="arn:aws:iam::000000000000:role/deployer",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": name, "Value": "y", "Type": "KEY_AND_VALUE"}],
    )
    try:
        deployment_id = _deploy(server, name)
        current: list[HostCommand | None] = []
        for host in hosts:
            command = host.poll_host_command()
            assert command is not None
            assert host.acknowledge(command.command_id, is_noop=False) == "InProgress"
            current.append(command)
        ran: list[list[str]] = [[] for _ in hosts]
        start = threading.Barrier(HOSTS + 1)

        def play(index: int) -> None:
            host, command = hosts[index], current[index]
            start.wait()
            while command is not None:
                ran[index].append(command.command_name)
                command = host.complete(command.command_id, "Succeeded", SUCCESS, then_next=True)

        other = CommandClient(hosts[0]._config)  # a connection of its own

        def stranger() -> str:
            start.wait()  # a completion for a command that is not this host's, meanwhile
            try:
                other.complete("999999", "Succeeded", SUCCESS, then_next=True)
            except ProtocolError as exc:
                return exc.code
            return "answered"

        with ThreadPoolExecutor(HOSTS + 1) as pool:
            refused = pool.submit(stranger)
            list(pool.map(play, range(HOSTS)))
        other.close()
        assert refused.result() == "ClientException"
        assert ran == [list(IN_PLACE)] * HOSTS
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        assert info["status"] == "Succeeded"
        # Exactly one command per host and event, each finished once.
        commands = _commands(server, deployment_id)
        assert sorted(commands) == sorted([(e, "Succeeded", True) for e in IN_PLACE] * HOSTS)
        h = schema.host_commands.c
        with server.services.db.tx() as conn:
            per_host = conn.execute(
                select(h.instance_name, func.count())
                .where(h.deployment_id == deployment_id)
                .group_by(h.instance_name)
            ).all()
        assert sorted(per_host) == [(f"together-{i}", len(IN_PLACE)) for i in range(HOSTS)]
    finally:
        for host in hosts:
            host.close()
