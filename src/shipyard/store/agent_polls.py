"""Each agent's latest long poll, whichever replica holds it.

An agent polls one request at a time, so a newer poll means an older one belongs to a
dead connection (a killed or restarted agent). A poll registers itself when it starts;
before claiming a command it checks it is still the latest, so an old poll held open on
another replica cannot take the command its agent's new poll is waiting for.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from shipyard.store import schema
from shipyard.store.dialects import insert_missing

P = schema.agent_polls


def register(conn: Connection, instance: str, poll_id: int, now: float) -> None:
    """Make ``poll_id`` the latest poll of ``instance``."""
    updated = conn.execute(
        P.update().where(P.c.instance_name == instance).values(poll_id=poll_id, started=now)
    )
    if updated.rowcount == 0:
        insert_missing(conn, P, [{"instance_name": instance, "poll_id": poll_id, "started": now}])
        # Two first polls at once: the row's poll id says which one won.


def latest(conn: Connection, instance: str) -> int | None:
    row = conn.execute(select(P.c.poll_id).where(P.c.instance_name == instance)).first()
    return int(row[0]) if row is not None else None
