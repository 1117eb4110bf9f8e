"""The few places where SQLite and PostgreSQL differ. Nothing else is dialect-aware."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from psycopg2 import errors as pg_errors
from sqlalchemy import Connection, Engine, Select, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool


def make_engine(url: str, *, threads: bool = False) -> Engine:
    """``threads``: for work on threads other than the event loop's (SQLite: a pool of
    connections of its own, each waiting up to 30 s for the single writer's lock, instead
    of the one connection the event loop uses)."""
    if url.startswith("sqlite"):
        # One connection shared by the server's single event-loop thread: SQLite
        # serialises writers anyway, and this avoids "database is locked".
        engine = (
            create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            if threads
            else create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
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
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    # No pre-ping: it cost a round trip per transaction (a 500-host deployment took 8.4 s
    # instead of 11.3). A connection PostgreSQL dropped fails its one statement instead;
    # SQLAlchemy then recycles every connection older than the failure, the API answers
    # that request 503 and the caller retries (agents, boto3 and the CLI all do).
    return create_engine(url, pool_size=10, max_overflow=20)


def lost_a_lock_cycle(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled the transaction back to break a lock cycle (deadlock
    detected, serialization failure): run again, it goes through."""
    cycle = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
    return isinstance(exc, DBAPIError) and isinstance(exc.orig, cycle)


def scrub(engine: Engine, tables: Sequence[str]) -> None:
    """Rewrite ``tables`` so no old copy of their rows lingers in the database files.

    An UPDATE leaves the row's previous bytes behind: in SQLite's freed pages and WAL
    frames, in PostgreSQL's dead tuples. After secrets are sealed in place, that would
    keep the plaintext readable to whoever reads the files. VACUUM rebuilds SQLite's
    file (the checkpoint then empties the WAL); VACUUM FULL writes the PostgreSQL tables
    into new files."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.exec_driver_sql(f"VACUUM FULL {', '.join(tables)}")


# pg_advisory_xact_lock key of "migrations" (any constant: it only has to be the same
# on every replica): replicas starting at once migrate one after the other.
MIGRATION_LOCK = 0x5348_4950_4D49_47


def lock_migrations(conn: Connection) -> None:
    """Hold the migration lock until ``conn``'s transaction ends (PostgreSQL); SQLite's
    database file has one server, whose write transaction already excludes others."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")


def for_update(query: Select[Any], dialect_name: str) -> Select[Any]:
    """Row lock for read-modify-write; SQLite's single writer makes it implicit."""
    if dialect_name == "sqlite":
        return query
    return query.with_for_update()


def commit_lazily(conn: Connection) -> None:
    """Let this transaction commit without waiting for its WAL to reach the disk.

    Only for writes that may be lost in a database crash without harm (a heartbeat:
    the next poll writes it again); a transaction that changed anything else must not
    call this. PostgreSQL otherwise waits for a flush on every commit, several
    milliseconds here, with the event loop blocked. SQLite (WAL, synchronous=NORMAL)
    does not sync on commit anyway."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")


def insert_missing(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, skipping those whose primary key is taken (by a row already
    there or one another replica inserts at the same moment)."""
    if not rows:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(table).values(list(rows)).on_conflict_do_nothing())


IN_LIST_SIZE = 500  # values per IN list: SQLite caps the parameters of one statement


def in_lists(values: Collection[str]) -> Iterator[list[str]]:
    """``values`` sorted (the same lock order for every writer) and cut into IN lists."""
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_LIST_SIZE):
        yield ordered[start : start + IN_LIST_SIZE]
