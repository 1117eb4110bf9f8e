"""The few places where SQLite and PostgreSQL differ. Nothing else is dialect-aware."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.pool import StaticPool


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # One connection shared by the server's single event-loop thread: SQLite
        # serialises writers anyway, and this avoids "database is locked".
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def for_update(query: Select[Any], dialect_name: str) -> Select[Any]:
    """Row lock for read-modify-write; SQLite's single writer makes it implicit."""
    if dialect_name == "sqlite":
        return query
    return query.with_for_update()
