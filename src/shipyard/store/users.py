"""People's keys: credentials rows of principal type ``user``, each with a role.

A user is the set of its keys; revoking deletes them all, and since every request
looks its key up afresh, the key stops working with the next request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shipyard.secretbox import SecretBox
from shipyard.store import credentials, schema

USER = "user"
_c = schema.credentials.c


def exists(conn: Connection, name: str) -> bool:
    query = select(_c.access_key_id).where(
        (_c.principal_type == USER) & (_c.principal_name == name)
    )
    return conn.execute(query.limit(1)).first() is not None


def role(conn: Connection, name: str) -> str | None:
    query = select(_c.role).where((_c.principal_type == USER) & (_c.principal_name == name))
    row = conn.execute(query.limit(1)).first()
    return None if row is None else str(row[0])


def create(
    conn: Connection, box: SecretBox, name: str, user_role: str, now: float
) -> tuple[str, str]:
    return credentials.issue(conn, box, USER, name, now, role=user_role)


def rotate(conn: Connection, box: SecretBox, name: str, now: float) -> tuple[str, str]:
    """A new key for the user, the old ones deleted in the same transaction."""
    user_role = role(conn, name)
    assert user_role is not None  # the caller checked the user exists
    credentials.revoke_principal(conn, USER, name)
    return credentials.issue(conn, box, USER, name, now, role=user_role)


def revoke(conn: Connection, name: str) -> None:
    credentials.revoke_principal(conn, USER, name)


def listed(conn: Connection) -> list[dict[str, Any]]:
    query = (
        select(_c.principal_name, _c.role, _c.access_key_id, _c.created)
        .where(_c.principal_type == USER)
        .order_by(_c.principal_name, _c.created)
    )
    return [
        {"userName": name, "role": r, "accessKeyId": key_id, "created": created}
        for name, r, key_id, created in conn.execute(query)
    ]
