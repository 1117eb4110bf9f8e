"""What every agent poll reads and writes about its instance: the host check's row, and
the contact it records (``last_seen``, the version the agent reports).

An idle fleet polls without pause (10,000 agents holding 50 s polls make about 220 a
second), and each poll ran these through SQLAlchemy's ``execute``, the update built anew
per call: about 0.5 ms of a 0.9 ms idle poll went to building, caching and wrapping
statements. Built once here and run through :mod:`shipyard.store.direct`.

An idle poll now reads the row outside any transaction (``quick_host_row``), and the
routine refresh of ``last_seen`` waits for the next second's ``record_seen``, one
statement for every poll of that second (``runner/contacts.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, func, select, update

from shipyard.store import direct, schema
from shipyard.store.dialects import in_lists
from shipyard.store.quick_reads import QuickReads

_i = schema.instances
_ic = _i.c

_HOST_ROW = select(_ic.iam_arn, _ic.registered, _ic.last_seen, _ic.agent_version).where(
    _ic.name == bindparam("instance")
)
# One statement for either write or both: a value not given keeps the stored one. Bind
# names differ from the columns' (SQLAlchemy reserves a column's own name in SET), and
# carry their types so that PostgreSQL can prepare it.
_CONTACT = (
    update(_i)
    .where(_ic.name == bindparam("instance"))
    .values(
        last_seen=func.coalesce(bindparam("seen_at", type_=_ic.last_seen.type), _ic.last_seen),
        agent_version=func.coalesce(
            bindparam("reported", type_=_ic.agent_version.type), _ic.agent_version
        ),
    )
)


class HostRow(NamedTuple):
    iam_arn: str
    registered: bool
    last_seen: float | None
    agent_version: str | None


def host_row(conn: Connection, instance: str) -> HostRow | None:
    """The instance's row as the host check reads it; None when there is none."""
    rows = direct.run(conn, _HOST_ROW, {"instance": instance})
    return _host_row(rows[0]) if rows else None


def quick_host_row(quick: QuickReads, instance: str) -> HostRow | None:
    """``host_row`` outside any transaction: what is committed now."""
    row = quick.first(_HOST_ROW, {"instance": instance})
    return _host_row(row) if row is not None else None


def _host_row(row: tuple[Any, ...]) -> HostRow:
    iam_arn, registered, last_seen, agent_version = row
    # The driver's own values: SQLite gives a Boolean column as 0 or 1.
    return HostRow(iam_arn, bool(registered), last_seen, agent_version)


def record_seen(conn: Connection, instances: Collection[str], seen_at: float) -> None:
    """Set ``last_seen`` of ``instances`` to ``seen_at``: the polls of the last second,
    in one statement (``runner/contacts.py``)."""
    for names in in_lists(instances):  # the same lock order as any other replica's batch
        conn.execute(update(_i).where(_ic.name.in_(names)).values(last_seen=seen_at))


def record_contact(
    conn: Connection, instance: str, *, seen_at: float | None, reported: str | None
) -> None:
    """Write ``last_seen`` and/or ``agent_version`` (each only when given; nothing when
    neither is)."""
    if seen_at is None and reported is None:
        return
    direct.run(conn, _CONTACT, {"instance": instance, "seen_at": seen_at, "reported": reported})


__all__ = ["HostRow", "host_row", "quick_host_row", "record_contact", "record_seen"]
