"""Leases: which replica does a piece of shared work, until when.

A lease is a row (name, holder, expires). Its holder renews it; anyone may take it once
it has expired. Times are the replicas' clocks (keep them in step: NTP).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, and_, delete, or_, select, update

from shipyard.store import schema
from shipyard.store.dialects import insert_missing

L = schema.leases


def hold(
    conn: Connection, names: Collection[str], holder: str, now: float, until: float
) -> set[str]:
    """Renew the leases of ``names`` that ``holder`` holds and take those free or
    expired, all until ``until``; the names ``holder`` holds afterwards."""
    if not names:
        return set()
    wanted = list(names)
    insert_missing(conn, L, [{"name": n, "holder": holder, "expires": until} for n in wanted])
    conn.execute(
        update(L)
        .where(and_(L.c.name.in_(wanted), or_(L.c.holder == holder, L.c.expires < now)))
        .values(holder=holder, expires=until)
    )
    rows = conn.execute(select(L.c.name).where(and_(L.c.name.in_(wanted), L.c.holder == holder)))
    return {row[0] for row in rows}


def release(conn: Connection, names: Collection[str], holder: str) -> None:
    """Give up ``holder``'s leases of ``names`` (another replica may take them at once)."""
    if names:
        conn.execute(delete(L).where(and_(L.c.name.in_(list(names)), L.c.holder == holder)))


def release_all(conn: Connection, holder: str) -> None:
    conn.execute(delete(L).where(L.c.holder == holder))


def live(conn: Connection, prefix: str, now: float) -> dict[str, str]:
    """Unexpired leases whose name starts with ``prefix``: name -> holder."""
    rows = conn.execute(
        select(L.c.name, L.c.holder).where(and_(L.c.name.startswith(prefix), L.c.expires >= now))
    )
    return {name: holder for name, holder in rows}


def purge(conn: Connection, expired_before: float) -> None:
    """Forget leases nobody has renewed since ``expired_before`` (finished work)."""
    conn.execute(delete(L).where(L.c.expires < expired_before))
