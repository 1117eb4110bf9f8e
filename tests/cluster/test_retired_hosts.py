"""Provisioned hosts retired by any replica are removed by the node that started them
(provision/retiring.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import AgentConfig
from shipyard.provision import ProvisionerConfig
from shipyard.provision.memory import MemoryProvisioner
from shipyard.provision.retiring import RetiredHosts, node_name, retire
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import open_database, provisioned
from shipyard.store.db import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def _node(tmp_path: Path, name: str) -> tuple[MemoryProvisioner, str]:
    work = tmp_path / name
    work.mkdir()
    return MemoryProvisioner(ProvisionerConfig("memory", work / "hosts")), node_name(work)


def _config(name: str) -> AgentConfig:
    return AgentConfig("http://127.0.0.1:1", name, "AKID", "secret", f"arn:{name}")


def test_a_host_retired_on_another_replica_is_removed_by_its_own_node(
    db: Database, tmp_path: Path
) -> None:
    hosts_a, node_a = _node(tmp_path, "a")
    hosts_b, node_b = _node(tmp_path, "b")
    for name in ("web-1", "web-2"):
        hosts_a.start_host(name, _config(name))
        with db.tx() as conn:
            provisioned.record(conn, name, node_a, 1.0)
    with db.tx() as conn:  # replica b runs the step that retires web-1
        retire(conn, "web-1", node_b)
    assert asyncio.run(RetiredHosts(db, hosts_b, node_b).remove()) == []
    assert asyncio.run(RetiredHosts(db, hosts_a, node_a).remove()) == ["web-1"]
    assert hosts_a.hosts() == ["web-2"]
    with db.tx() as conn:
        assert provisioned.owner(conn, "web-1") is None  # done: forgotten
        assert provisioned.owner(conn, "web-2") == node_a
    assert asyncio.run(RetiredHosts(db, hosts_a, node_a).remove()) == []


def test_a_host_started_before_hosts_were_recorded_is_removed_where_retired(
    db: Database, tmp_path: Path
) -> None:
    hosts, node = _node(tmp_path, "a")
    hosts.start_host("old-1", _config("old-1"))
    with db.tx() as conn:
        retire(conn, "old-1", node)
    assert asyncio.run(RetiredHosts(db, hosts, node).remove()) == ["old-1"]
    assert hosts.hosts() == []
