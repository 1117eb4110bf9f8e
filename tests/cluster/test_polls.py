"""Agents' polls across replicas (cluster/polls.py), on SQLite and PostgreSQL: only the
latest poll may claim, and a replica keeps last_seen fresh for the polls it holds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from shipyard.cluster.polls import LatestPolls, refresh_held_polls
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import open_database, schema
from shipyard.store.db import Database


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def test_a_newer_poll_on_another_replica_supersedes_the_older(db: Database) -> None:
    on_a, on_b = LatestPolls(shared=lambda: True), LatestPolls(shared=lambda: True)
    old, new = on_a.new_poll(), on_b.new_poll()
    with db.tx() as conn:
        assert on_a.may_claim(conn, "web-1", old, 1.0, first=True)
    with db.tx() as conn:
        assert on_b.may_claim(conn, "web-1", new, 2.0, first=True)
    with db.tx() as conn:  # the old poll, woken by work, must not take it
        assert not on_a.may_claim(conn, "web-1", old, 3.0, first=False)
        assert on_b.may_claim(conn, "web-1", new, 3.0, first=False)
        assert on_a.may_claim(conn, "web-2", old, 3.0, first=True)  # another agent


def test_a_replica_alone_keeps_nothing(db: Database) -> None:
    solo = LatestPolls(shared=lambda: False)
    with db.tx() as conn:
        assert solo.may_claim(conn, "web-1", solo.new_poll(), 1.0, first=True)
        assert conn.execute(select(schema.agent_polls)).all() == []


def _add(conn: object, name: str, last_seen: float | None) -> None:
    conn.execute(  # type: ignore[attr-defined]
        schema.instances.insert().values(
            name=name,
            iam_arn=f"arn:aws:iam::000000000000:user/{name}",
            registered=True,
            register_time=0.0,
            last_seen=last_seen,
            doc={},
        )
    )


def test_held_polls_keep_last_seen_fresh_without_rewriting_fresh_rows(db: Database) -> None:
    timeout = 60.0
    with db.tx() as conn:
        _add(conn, "stale", 900.0)
        _add(conn, "fresh", 990.0)
        _add(conn, "never", None)
        _add(conn, "elsewhere", 900.0)  # its poll is held by another replica
        assert refresh_held_polls(conn, ["stale", "fresh", "never"], 1000.0, timeout) == 2
        c = schema.instances.c
        seen = dict(conn.execute(select(c.name, c.last_seen)).all())
    assert seen == {"stale": 1000.0, "fresh": 990.0, "never": 1000.0, "elsewhere": 900.0}
