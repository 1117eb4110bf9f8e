"""Console sign-ins: a token's hash, the key it was opened with, its CSRF token, expiry."""

from __future__ import annotations

from sqlalchemy import Connection, select

from shipyard.store import schema

_s = schema.console_sessions.c


def open_session(
    conn: Connection, token_hash: str, key_id: str, csrf: str, now: float, expires: float
) -> None:
    conn.execute(schema.console_sessions.delete().where(_s.expires < now))  # old ones go
    conn.execute(
        schema.console_sessions.insert().values(
            token_hash=token_hash, access_key_id=key_id, csrf=csrf, created=now, expires=expires
        )
    )


def find(conn: Connection, token_hash: str) -> tuple[str, str, float] | None:
    """``(access key id, csrf token, expires)`` of a session, or None."""
    row = conn.execute(
        select(_s.access_key_id, _s.csrf, _s.expires).where(_s.token_hash == token_hash)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def close(conn: Connection, token_hash: str) -> None:
    conn.execute(schema.console_sessions.delete().where(_s.token_hash == token_hash))
