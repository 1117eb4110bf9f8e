"""Access keys Shipyard issues: one admin key at first start, one per instance.

The key id is public and looked up as is; the secret is stored sealed by the server's
SecretBox (shipyard.secretbox), bound to its key id, and read for each signature check
(the box keeps what it opened: a token opens to the same text each time).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from shipyard.secretbox import SecretBox, resealed
from shipyard.store import schema
from shipyard.store.quick_reads import QuickReads

_KEY_ALPHABET = string.ascii_uppercase + string.digits


def new_key_pair(prefix: str) -> tuple[str, str]:
    """An access key id like AWS's (20 chars) and a 40-char secret."""
    key_id = prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(20 - len(prefix)))
    return key_id, secrets.token_urlsafe(30)[:40]


def seal_context(access_key_id: str) -> str:
    """What a key's sealed secret is bound to: it opens on its own row only."""
    return f"credentials/{access_key_id}"


_PREFIXES = {"admin": "AKSY", "user": "AKSU"}


def issue(
    conn: Connection,
    box: SecretBox,
    principal_type: str,
    principal_name: str,
    now: float,
    role: str | None = None,
) -> tuple[str, str]:
    key_id, secret = new_key_pair(_PREFIXES.get(principal_type, "AKSI"))
    conn.execute(
        schema.credentials.insert().values(
            access_key_id=key_id,
            secret_access_key=box.seal(secret, seal_context(key_id)),
            principal_type=principal_type,
            principal_name=principal_name,
            created=now,
            role=role,
        )
    )
    return key_id, secret


_c = schema.credentials.c


# Built once: every request runs it (a reused statement keeps its memoised cache key).
_LOOKUP = select(_c.secret_access_key, _c.principal_type, _c.principal_name, _c.role).where(
    _c.access_key_id == bindparam("key_id")
)


def lookup_key(
    conn: Connection, box: SecretBox, access_key_id: str
) -> tuple[str, str, str, str] | None:
    """``(secret, principal_type, principal_name, role)`` for a key, or None. A key
    deleted (revoked) is gone from the next request on: the row is read every time."""
    return _opened(box, access_key_id, conn.execute(_LOOKUP, {"key_id": access_key_id}).first())


def find_key(
    reads: QuickReads, box: SecretBox, access_key_id: str
) -> tuple[str, str, str, str] | None:
    """``lookup_key`` outside any transaction, for every request's signature check."""
    return _opened(box, access_key_id, reads.first(_LOOKUP, {"key_id": access_key_id}))


def _opened(
    box: SecretBox, access_key_id: str, row: Sequence[Any] | None
) -> tuple[str, str, str, str] | None:
    if row is None:
        return None
    return box.open(row[0], seal_context(access_key_id)), row[1], row[2], row[3] or ""


def oldest_key(
    conn: Connection, box: SecretBox, principal_type: str, principal_name: str
) -> tuple[str, str] | None:
    """``(key id, secret)`` of the principal's first issued key, or None."""
    row = conn.execute(
        select(_c.access_key_id, _c.secret_access_key)
        .where((_c.principal_type == principal_type) & (_c.principal_name == principal_name))
        .order_by(_c.created, _c.access_key_id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return row[0], box.open(row[1], seal_context(row[0]))


def internal_key(
    conn: Connection, box: SecretBox, principal_type: str, principal_name: str, now: float
) -> tuple[str, str]:
    """A key the server uses to call its own APIs: issued on first use, then reused
    (the oldest wins, so replicas racing to issue one agree)."""
    found = oldest_key(conn, box, principal_type, principal_name)
    return found or issue(conn, box, principal_type, principal_name, now)


def reseal(conn: Connection, box: SecretBox) -> int:
    """Seal under the current key every secret that is not (plaintext from before
    secrets were encrypted, or sealed by an older key); how many were rewritten."""
    rows = conn.execute(select(_c.access_key_id, _c.secret_access_key)).all()
    changed = 0
    for key_id, stored in rows:
        sealed = resealed(box, stored, seal_context(key_id))
        if sealed is not None:
            conn.execute(
                schema.credentials.update()
                .where(_c.access_key_id == key_id)
                .values(secret_access_key=sealed)
            )
            changed += 1
    return changed


def revoke_principal(conn: Connection, principal_type: str, principal_name: str) -> None:
    c = schema.credentials.c
    conn.execute(
        schema.credentials.delete().where(
            (c.principal_type == principal_type) & (c.principal_name == principal_name)
        )
    )


def has_admin(conn: Connection) -> bool:
    c = schema.credentials.c
    return (
        conn.execute(select(c.access_key_id).where(c.principal_type == "admin")).first() is not None
    )


def issue_function_key(
    conn: Connection, box: SecretBox, principal_name: str, now: float
) -> tuple[str, str]:
    """A function worker's own key (``ASIA``-prefixed, as AWS spells temporary keys)."""
    key_id, secret = new_key_pair("ASIA")
    conn.execute(
        schema.credentials.insert().values(
            access_key_id=key_id,
            secret_access_key=box.seal(secret, seal_context(key_id)),
            principal_type="function",
            principal_name=principal_name,
            created=now,
        )
    )
    return key_id, secret


def revoke_key(conn: Connection, access_key_id: str) -> None:
    c = schema.credentials.c
    conn.execute(schema.credentials.delete().where(c.access_key_id == access_key_id))


def revoke_issued_before(conn: Connection, principal_type: str, before: float) -> int:
    """Drop every key of ``principal_type`` issued before ``before``; how many went."""
    c = schema.credentials.c
    result = conn.execute(
        schema.credentials.delete().where(
            (c.principal_type == principal_type) & (c.created < before)
        )
    )
    return int(result.rowcount or 0)
