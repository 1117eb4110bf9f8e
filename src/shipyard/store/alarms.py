"""Alarm definitions, by name (``schema.alarms``); the doc is ``alarms.to_document``'s form."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from shipyard.alarms import AlarmDefinition, from_document, to_document
from shipyard.store import schema

_t = schema.alarms
_c = _t.c


def put_alarm(conn: Connection, definition: AlarmDefinition, now: float) -> None:
    """Create the alarm, or replace the definition of the one with that name."""
    doc = to_document(definition)
    replaced = conn.execute(_t.update().where(_c.name == definition.name).values(doc=doc))
    if replaced.rowcount == 0:
        conn.execute(_t.insert().values(name=definition.name, create_time=now, doc=doc))


def get_alarm(conn: Connection, name: str) -> AlarmDefinition | None:
    doc = conn.execute(select(_c.doc).where(_c.name == name)).scalar()
    return None if doc is None else from_document(doc)


def get_alarms(conn: Connection, names: Sequence[str]) -> dict[str, AlarmDefinition]:
    """The definitions of those of ``names`` that exist, by name (one query)."""
    if not names:
        return {}
    docs = conn.execute(select(_c.doc).where(_c.name.in_(set(names)))).scalars()
    found = (from_document(doc) for doc in docs)
    return {definition.name: definition for definition in found}


def list_alarms(conn: Connection) -> list[AlarmDefinition]:
    """Every alarm, by name."""
    return [from_document(doc) for doc in conn.execute(select(_c.doc).order_by(_c.name)).scalars()]


def delete_alarm(conn: Connection, name: str) -> bool:
    """Delete the alarm; whether there was one."""
    return bool(conn.execute(_t.delete().where(_c.name == name)).rowcount)


def bake_seconds(conn: Connection, names: Sequence[str]) -> float:
    """How long a deployment watching ``names`` bakes: the longest of their bake times
    (0 when none of them exists or none bakes)."""
    return max((d.bake_seconds for d in get_alarms(conn, names).values()), default=0.0)
