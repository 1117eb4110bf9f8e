"""This replica's share of the work the replicas on one database divide among them.

Why leases in a table rather than PostgreSQL advisory locks: advisory locks belong to
a database session, so they would pin a pooled connection per piece of work, vanish
with every reconnect (a PostgreSQL restart hands every piece to whoever asks first),
exist only on PostgreSQL and cannot be listed per holder cheaply. A lease row works the
same on SQLite, survives reconnects, is visible (``SELECT * FROM leases``), and its
expiry bounds how long a dead replica's work waits: ``lease_seconds``.

Each replica renews a membership lease ``replica:<id>`` every round. A piece of work
(``deployment:<id>``, ``alarm:<name>``, ``task:outdated``) goes to the live replica that
rendezvous hashing ranks first for it, so work spreads evenly and moves only when a
replica joins or leaves. A replica takes a lease only for work it ranks first on, and
only when the lease is free, expired or its own; it gives up leases it no longer ranks
first on, so the one that does can take them at once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Collection

from shipyard.store import leases
from shipyard.store.db import Database

log = logging.getLogger("shipyard.cluster")

MEMBER = "replica:"
PURGE_EVERY = 60  # rounds between purges of leases nobody renews
PURGE_AFTER_SECONDS = 3600.0


def replica_id() -> str:
    """Unique per process; readable in the leases table (host and pid)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rank(replica: str, work: str) -> bytes:
    return hashlib.blake2b(f"{replica}\n{work}".encode(), digest_size=8).digest()


def first_choice(replicas: Collection[str], work: str) -> str:
    """The replica rendezvous hashing gives ``work`` to."""
    return max(replicas, key=lambda replica: rank(replica, work))


class WorkShare:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        lease_seconds: float,
        replica: str | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.replica = replica or replica_id()
        self.members: list[str] = [self.replica]  # live replicas at the last beat
        self._held: dict[str, set[str]] = {}  # kind -> names held at the last claim
        self._beats = 0

    def beat(self) -> list[str]:
        """Renew this replica's membership; the live replicas (this one included)."""
        now = self.clock()
        name = MEMBER + self.replica
        with self.db.tx() as conn:
            leases.hold(conn, [name], self.replica, now, now + self.lease_seconds)
            members = leases.live(conn, MEMBER, now)
            self._beats += 1
            if self._beats % PURGE_EVERY == 0:
                leases.purge(conn, now - PURGE_AFTER_SECONDS)
        live = sorted({n.removeprefix(MEMBER) for n in members} | {self.replica})
        if live != self.members:
            log.info("replicas: %s", ", ".join(live))
        self.members = live
        return live

    def mine(self, kind: str, keys: Collection[str]) -> set[str]:
        """Of ``keys`` (work of one ``kind``), those this replica holds the lease for
        now: taken or renewed for ``lease_seconds``. Leases of ``kind`` held before and
        not wanted now (finished work, or work another replica ranks first on) are
        given up."""
        prefix = f"{kind}:"
        preferred = {
            prefix + key for key in keys if first_choice(self.members, prefix + key) == self.replica
        }
        now = self.clock()
        with self.db.tx() as conn:
            held = leases.hold(conn, preferred, self.replica, now, now + self.lease_seconds)
            leases.release(conn, self._held.get(kind, set()) - held, self.replica)
        self._held[kind] = held
        return {name.removeprefix(prefix) for name in held}

    def leave(self) -> None:
        """Shutting down: give up every lease now, so others take the work at once."""
        with self.db.tx() as conn:
            leases.release_all(conn, self.replica)
        self._held.clear()
