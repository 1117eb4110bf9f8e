"""Stacks, their resources and events, and change sets (shipyard.stacks)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, select

from shipyard.store import schema

_s = schema.stacks.c
_r = schema.stack_resources.c
_e = schema.stack_events.c
_cs = schema.change_sets.c

Row = dict[str, Any]


def insert_stack(conn: Connection, **values: Any) -> None:
    conn.execute(schema.stacks.insert().values(**values))


def find_stack(conn: Connection, name_or_id: str) -> Row | None:
    """The live stack of that name, or the stack with that id (deleted ones too)."""
    if name_or_id.startswith("arn:"):
        query = select(schema.stacks).where(_s.stack_id == name_or_id)
    else:
        query = select(schema.stacks).where((_s.name == name_or_id) & _s.deleted.is_(None))
    row = conn.execute(query.order_by(_s.created.desc()).limit(1)).mappings().first()
    return dict(row) if row else None


def list_stacks(conn: Connection, with_deleted: bool) -> list[Row]:
    query = select(schema.stacks).order_by(_s.created.desc())
    if not with_deleted:
        query = query.where(_s.deleted.is_(None))
    return [dict(row) for row in conn.execute(query).mappings()]


def stacks_in_progress(conn: Connection) -> list[Row]:
    query = select(schema.stacks).where(
        _s.status.like("%IN_PROGRESS") & (_s.status != "REVIEW_IN_PROGRESS")
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def update_stack(conn: Connection, stack_id: str, **values: Any) -> None:
    conn.execute(schema.stacks.update().where(_s.stack_id == stack_id).values(**values))


def delete_stack_row(conn: Connection, stack_id: str) -> None:
    conn.execute(schema.stacks.delete().where(_s.stack_id == stack_id))


def resources(conn: Connection, stack_id: str) -> dict[str, Row]:
    query = select(schema.stack_resources).where(_r.stack_id == stack_id)
    return {row["logical_id"]: dict(row) for row in conn.execute(query).mappings()}


def put_resource(conn: Connection, stack_id: str, logical_id: str, **values: Any) -> None:
    """Insert the resource's row, or update the columns given."""
    where = (_r.stack_id == stack_id) & (_r.logical_id == logical_id)
    found = conn.execute(select(_r.logical_id).where(where)).first()
    if found is None:
        conn.execute(
            schema.stack_resources.insert().values(
                stack_id=stack_id, logical_id=logical_id, **values
            )
        )
    else:
        conn.execute(schema.stack_resources.update().where(where).values(**values))


def delete_resource(conn: Connection, stack_id: str, logical_id: str) -> None:
    conn.execute(
        schema.stack_resources.delete().where(
            (_r.stack_id == stack_id) & (_r.logical_id == logical_id)
        )
    )


def settle_resources(conn: Connection, stack_id: str) -> None:
    conn.execute(
        schema.stack_resources.update()
        .where(_r.stack_id == stack_id)
        .values(touched=None, previous=None, progress=None)
    )


def next_touch(conn: Connection, stack_id: str) -> int:
    found = conn.execute(
        select(func.max(_r.touched)).where(_r.stack_id == stack_id)
    ).scalar_one_or_none()
    return int(found or 0) + 1


def add_event(conn: Connection, **values: Any) -> None:
    conn.execute(schema.stack_events.insert().values(event_id=str(uuid.uuid4()), **values))


STACK_TYPE = "AWS::CloudFormation::Stack"


def set_status(
    conn: Connection, stack: Row, status: str, reason: str | None, now: float, **values: Any
) -> None:
    """The stack's new status, and the stack event that says so."""
    update_stack(conn, stack["stack_id"], status=status, status_reason=reason, **values)
    add_event(
        conn,
        stack_id=stack["stack_id"],
        stack_name=stack["name"],
        logical_id=stack["name"],
        physical_id=stack["stack_id"],
        resource_type=STACK_TYPE,
        status=status,
        reason=reason,
        timestamp=now,
    )


def events(conn: Connection, stack_id: str, after: int = 0) -> list[Row]:
    """A stack's events, newest first (after sequence number ``after``)."""
    query = (
        select(schema.stack_events)
        .where((_e.stack_id == stack_id) & (_e.seq > after))
        .order_by(_e.seq.desc())
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def insert_change_set(conn: Connection, **values: Any) -> None:
    conn.execute(schema.change_sets.insert().values(**values))


def find_change_set(conn: Connection, name_or_id: str, stack_id: str | None) -> Row | None:
    if name_or_id.startswith("arn:"):
        query = select(schema.change_sets).where(_cs.change_set_id == name_or_id)
    elif stack_id is not None:
        query = select(schema.change_sets).where(
            (_cs.name == name_or_id) & (_cs.stack_id == stack_id)
        )
    else:
        return None
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def change_sets_of(conn: Connection, stack_id: str) -> list[Row]:
    query = select(schema.change_sets).where(_cs.stack_id == stack_id).order_by(_cs.created)
    return [dict(row) for row in conn.execute(query).mappings()]


def update_change_set(conn: Connection, change_set_id: str, **values: Any) -> None:
    conn.execute(
        schema.change_sets.update().where(_cs.change_set_id == change_set_id).values(**values)
    )


def delete_change_set(conn: Connection, change_set_id: str) -> None:
    conn.execute(schema.change_sets.delete().where(_cs.change_set_id == change_set_id))
