"""Work shared among replicas through leases (cluster/share.py, store/leases.py), on
SQLite and PostgreSQL: each piece of work has one holder, the live replicas divide it,
a dead replica's work moves when its leases expire, a leaving one's at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.cluster.share import WorkShare
from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import leases, open_database
from shipyard.store.db import Database

LEASE = 5.0
WORK = [f"d-{n}" for n in range(40)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def replicas(db: Database, clock: Clock, *names: str) -> list[WorkShare]:
    shares = [WorkShare(db, clock, LEASE, replica=name) for name in names]
    for share in shares * 2:  # the second round sees every member
        share.beat()
    return shares


def split(shares: list[WorkShare]) -> list[set[str]]:
    return [share.mine("deployment", WORK) for share in shares]


def test_live_replicas_divide_the_work_each_piece_to_one(db: Database) -> None:
    clock = Clock()
    shares = replicas(db, clock, "a", "b", "c")
    assert all(share.members == ["a", "b", "c"] for share in shares)
    parts = split(shares)
    assert set().union(*parts) == set(WORK)
    assert sum(len(part) for part in parts) == len(WORK)  # no piece twice
    assert all(parts), parts  # 40 pieces: each of three replicas has some
    # Renewing changes nothing.
    clock.now += 1
    assert split(shares) == parts


def test_a_dead_replicas_work_moves_when_its_leases_expire(db: Database) -> None:
    clock = Clock()
    a, b = replicas(db, clock, "a", "b")
    held_a, held_b = split([a, b])
    assert held_a and held_b
    # a dies (kill -9: it renews nothing and gives nothing up).
    clock.now += LEASE - 1
    b.beat()
    assert b.mine("deployment", WORK) == held_b  # not yet: a's leases still run
    clock.now += 2
    assert b.beat() == ["b"]
    assert b.mine("deployment", WORK) == set(WORK)


def test_a_leaving_replica_hands_its_work_over_at_once(db: Database) -> None:
    clock = Clock()
    a, b = replicas(db, clock, "a", "b")
    held_a, _ = split([a, b])
    assert held_a
    a.leave()
    assert b.beat() == ["b"]
    assert b.mine("deployment", WORK) == set(WORK)


def test_a_joining_replica_gets_its_share_once_the_others_let_go(db: Database) -> None:
    clock = Clock()
    a, b = replicas(db, clock, "a", "b")
    split([a, b])
    c = WorkShare(db, clock, LEASE, replica="c")
    c.beat()
    a.beat()
    b.beat()
    # c ranks first on some work, but a and b still hold it until they let go.
    assert c.mine("deployment", WORK) == set()
    parts = split([a, b])
    assert set().union(*parts) < set(WORK)  # they gave up c's share
    part_c = c.mine("deployment", WORK)
    assert part_c and part_c.isdisjoint(set().union(*parts))
    assert set().union(*parts, part_c) == set(WORK)


def test_finished_work_is_given_up(db: Database) -> None:
    clock = Clock()
    (a,) = replicas(db, clock, "a")
    assert a.mine("deployment", WORK) == set(WORK)
    assert a.mine("deployment", WORK[:3]) == set(WORK[:3])
    with db.tx() as conn:
        names = set(leases.live(conn, "deployment:", clock.now))
    assert names == {f"deployment:{w}" for w in WORK[:3]}


def test_a_lease_has_one_holder_until_it_expires(db: Database) -> None:
    with db.tx() as conn:
        assert leases.hold(conn, ["x"], "a", 10.0, 15.0) == {"x"}
        assert leases.hold(conn, ["x"], "b", 14.0, 19.0) == set()
        assert leases.hold(conn, ["x"], "a", 14.0, 19.0) == {"x"}  # renewed
        assert leases.hold(conn, ["x"], "b", 19.5, 24.5) == {"x"}  # expired: taken
        assert leases.hold(conn, ["x"], "a", 20.0, 25.0) == set()
