"""What every agent poll reads and writes about its instance: the host check's row, and
the contact it records (``last_seen``, the version the agent reports).

An idle fleet polls without pause (10,000 agents holding 50 s polls make about 220 a
second), and each poll ran these through SQLAlchemy's ``execute``, the update built anew
per call: about 0.5 ms of a 0.9 ms idle poll went to building, caching and wrapping
statements. Built once here and run through :mod:`shipyard.store.direct`.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select, update

from shipyard.store import direct, schema

_i = schema.instances
_ic = _i.c

_HOST_ROW = select(_ic.iam_arn, _ic.registered, _ic.last_seen, _ic.agent_version).where(
    _ic.name == bindparam("instance")
)
# Bind names differ from the columns': SQLAlchemy reserves a column's own name in SET.
_SEEN = update(_i).where(_ic.name == bindparam("instance")).values(last_seen=bindparam("seen_at"))
_VERSION = (
    update(_i).where(_ic.name == bindparam("instance")).values(agent_version=bindparam("reported"))
)
_SEEN_AND_VERSION = (
    update(_i)
    .where(_ic.name == bindparam("instance"))
    .values(last_seen=bindparam("seen_at"), agent_version=bindparam("reported"))
)


class HostRow(NamedTuple):
    iam_arn: str
    registered: bool
    last_seen: float | None
    agent_version: str | None


def host_row(conn: Connection, instance: str) -> HostRow | None:
    """The instance's row as the host check reads it; None when there is none."""
    rows = direct.run(conn, _HOST_ROW, {"instance": instance})
    if not rows:
        return None
    iam_arn, registered, last_seen, agent_version = rows[0]
    # The driver's own values: SQLite gives a Boolean column as 0 or 1.
    return HostRow(iam_arn, bool(registered), last_seen, agent_version)


def record_contact(
    conn: Connection, instance: str, *, seen_at: float | None, reported: str | None
) -> None:
    """Write ``last_seen`` and/or ``agent_version`` (each only when given)."""
    if seen_at is not None and reported is not None:
        params = {"instance": instance, "seen_at": seen_at, "reported": reported}
        direct.run(conn, _SEEN_AND_VERSION, params)
    elif seen_at is not None:
        direct.run(conn, _SEEN, {"instance": instance, "seen_at": seen_at})
    elif reported is not None:
        direct.run(conn, _VERSION, {"instance": instance, "reported": reported})


__all__ = ["HostRow", "host_row", "record_contact"]
