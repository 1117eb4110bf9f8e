"""Tags on ARN-addressed resources (applications, deployment groups, configs).

Tags are ``{"Key": ..., "Value": ...}`` dicts on the wire; one row per (arn, key), so
tagging an existing key replaces its value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema

_t = schema.resource_tags
_c = _t.c


def resource_tags(conn: Connection, arn: str) -> list[dict[str, str]]:
    """The resource's tags, sorted by key."""
    rows = conn.execute(select(_c.key, _c.value).where(_c.arn == arn).order_by(_c.key))
    return [{"Key": key, "Value": value} for key, value in rows]


def count_resource_tags(conn: Connection, arn: str, extra_keys: set[str]) -> int:
    """How many distinct keys the resource would have after adding ``extra_keys``."""
    existing = {row[0] for row in conn.execute(select(_c.key).where(_c.arn == arn))}
    return len(existing | extra_keys)


def put_resource_tags(conn: Connection, arn: str, tags: list[dict[str, Any]]) -> None:
    """Add tags, replacing the value of keys that already exist."""
    for tag in tags:
        conn.execute(_t.delete().where((_c.arn == arn) & (_c.key == tag["Key"])))
        conn.execute(_t.insert().values(arn=arn, key=tag["Key"], value=tag.get("Value", "")))


def remove_resource_tags(conn: Connection, arn: str, keys: list[str]) -> None:
    if keys:
        conn.execute(_t.delete().where((_c.arn == arn) & (_c.key.in_(keys))))


def delete_resource_tags(conn: Connection, arn: str) -> None:
    conn.execute(_t.delete().where(_c.arn == arn))


def move_resource_tags(conn: Connection, old_arn: str, new_arn: str) -> None:
    """Re-key tags after a rename (the ARN contains the name)."""
    conn.execute(_t.update().where(_c.arn == old_arn).values(arn=new_arn))
