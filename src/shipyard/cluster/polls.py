"""Agents' long polls across replicas.

- ``LatestPolls``: only an agent's latest poll, on whichever replica, may claim its
  commands. On SQLite there is one server, whose own poll counter (runner/agents.py)
  already says which poll is the latest: nothing is stored.
- ``refresh_held_polls``: a poll held open is contact with the agent, but ``last_seen``
  is written only when a poll starts. Every replica refreshes it for the polls it holds
  before it grows old enough to alarm any replica's sweeper.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection

from sqlalchemy import Connection, and_, or_, update

from shipyard.store import agent_polls, schema

_i = schema.instances.c


class LatestPolls:
    def __init__(self, shared: bool) -> None:
        self.shared = shared  # several replicas may hold polls (PostgreSQL)

    def new_poll(self) -> int:
        return secrets.randbits(62)

    def may_claim(
        self, conn: Connection, instance: str, poll_id: int, now: float, first: bool
    ) -> bool:
        """Whether poll ``poll_id`` of ``instance`` is still its latest, in the claim's
        own transaction; the poll's ``first`` check registers it as the latest."""
        if not self.shared:
            return True
        if first:
            agent_polls.register(conn, instance, poll_id, now)
        return agent_polls.latest(conn, instance) == poll_id


def refresh_every(agent_timeout: float) -> float:
    """How often a replica refreshes ``last_seen`` for the polls it holds."""
    return agent_timeout / 4


def refresh_held_polls(
    conn: Connection, instances: Collection[str], now: float, agent_timeout: float
) -> int:
    """Set ``last_seen`` to ``now`` for ``instances`` (polls held here) where it is older
    than half the agent timeout: refreshed every quarter of it, it never reaches the
    timeout while a poll is held, and polls that started recently cost no write."""
    if not instances:
        return 0
    stale = now - agent_timeout / 2
    result = conn.execute(
        update(schema.instances)
        .where(
            and_(
                _i.name.in_(list(instances)),
                or_(_i.last_seen.is_(None), _i.last_seen < stale),
            )
        )
        .values(last_seen=now)
    )
    return int(result.rowcount)
