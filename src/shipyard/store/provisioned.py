"""Provisioned hosts and the node whose provisioner started them.

Only that node can remove a host (a container on its machine, files in its data
directory); any replica may ask for the removal by marking the host retiring.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, select

from shipyard.store import schema
from shipyard.store.dialects import insert_missing

P = schema.provisioned_hosts


def record(conn: Connection, name: str, node: str, now: float) -> None:
    insert_missing(conn, P, [{"name": name, "node": node, "retiring": False, "created": now}])


def owner(conn: Connection, name: str) -> str | None:
    row = conn.execute(select(P.c.node).where(P.c.name == name)).first()
    return str(row[0]) if row is not None else None


def mark_retiring(conn: Connection, name: str) -> None:
    conn.execute(P.update().where(P.c.name == name).values(retiring=True))


def retiring(conn: Connection, node: str) -> list[str]:
    """Hosts of ``node`` some replica asked to remove."""
    rows = conn.execute(
        select(P.c.name).where(and_(P.c.node == node, P.c.retiring.is_(True))).order_by(P.c.name)
    )
    return [row[0] for row in rows]


def forget(conn: Connection, name: str) -> None:
    conn.execute(delete(P).where(P.c.name == name))
