"""Agents' long polls across replicas.

- ``LatestPolls``: only an agent's latest poll, on whichever replica, may claim its
  commands. With one replica (always on SQLite) its own poll counter (runner/agents.py)
  already says which poll is the latest: nothing is stored, and a poll costs nothing
  more. A poll that starts while several replicas are live registers itself.
- ``refresh_held_polls``: a poll held open is contact with the agent, but ``last_seen``
  is written only when a poll starts. Every replica refreshes it for the polls it holds
  before it grows old enough to alarm any replica's sweeper.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection

from sqlalchemy import Connection, and_, or_, update

from shipyard.store import agent_polls, schema

_i = schema.instances.c


UNREGISTERED = 0  # the poll id of a poll that started while this replica was alone


class LatestPolls:
    def __init__(self, shared: Callable[[], bool]) -> None:
        self.shared = shared  # whether other replicas may hold polls now

    def new_poll(self) -> int:
        """The id of a poll starting now: registered (and checked) only when other
        replicas are live; a poll that began alone claims as before."""
        return secrets.randbits(62) | 1 if self.shared() else UNREGISTERED

    def may_claim(
        self, conn: Connection, instance: str, poll_id: int, now: float, first: bool
    ) -> bool:
        """Whether poll ``poll_id`` of ``instance`` is still its latest, in the claim's
        own transaction; the poll's ``first`` check registers it as the latest."""
        if poll_id == UNREGISTERED:
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
