"""The polls' routine ``last_seen`` refreshes, written together once a second.

An idle fleet polls without pause (10,000 agents holding 50 s polls make about 220 a
second), and each poll of an agent last seen more than a few seconds ago used to write
its ``last_seen`` in the poll's own transaction. A poll now notes the contact here, and
the sweeper writes the notes of each second in one statement. A contact that is news
(a first poll, an agent back from silence) is still written by the poll itself
(``agent_protocol.look_at_host``).
"""

from __future__ import annotations

from shipyard.store import host_contact
from shipyard.store.db import Database
from shipyard.store.dialects import commit_lazily


class ContactBook:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._noted: dict[str, float] = {}  # instance -> when its latest poll started

    def note(self, instance: str, at: float) -> None:
        """``instance``'s agent polled at ``at``; ``last_seen`` follows within a second."""
        self._noted[instance] = at

    def write(self) -> int:
        """Write the contacts noted since the last call, in one transaction that does
        not wait for the disk (a heartbeat lost in a database crash is written by the
        next poll). Each ``last_seen`` becomes the earliest poll of the batch: late by
        under a second, never ahead of the truth. How many were written; on an error
        they are kept for the next call."""
        if not self._noted:
            return 0
        batch, self._noted = self._noted, {}
        try:
            with self.db.tx() as conn:
                host_contact.record_seen(conn, batch.keys(), min(batch.values()))
                commit_lazily(conn)
        except Exception:
            self._noted = {**batch, **self._noted}
            raise
        return len(batch)
