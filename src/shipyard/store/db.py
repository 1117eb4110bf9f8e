"""Database handle: engine, migrations, transactions."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection, Engine

from shipyard.secretbox import SecretBox
from shipyard.store.dialects import lock_migrations, make_engine, scrub
from shipyard.store.migrations import SEALED_SECRETS, current_version, migrate
from shipyard.store.quick_reads import QuickReads
from shipyard.store.secret_rows import SECRET_TABLES, check_key, reseal_all


class Database:
    def __init__(self, engine: Engine, secret_box: SecretBox) -> None:
        self.engine = engine
        # Seals and opens the secrets stored in it (store.secret_rows lists them).
        self.secret_box = secret_box
        self._quick: QuickReads | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def tx(self) -> AbstractContextManager[Connection]:
        """One transaction: committed on success, rolled back on any exception."""
        # SQLAlchemy's own context manager, not a generator wrapping it: every request
        # opens one or more of these.
        return self.engine.begin()

    @property
    def quick(self) -> QuickReads:
        """The key lookup's and an Invoke's reads, on a connection of their own."""
        if self._quick is None:
            self._quick = QuickReads(self.engine)
        return self._quick

    def close(self) -> None:
        if self._quick is not None:
            self._quick.close()
        self.engine.dispose()


def for_threads(db: Database, url: str) -> Database:
    """A handle for work on threads other than the event loop's: ``db`` itself on
    PostgreSQL (its pool serves any thread); on SQLite an engine with connections of its
    own, as the event loop's one connection must not be shared with other threads."""
    if db.dialect != "sqlite":
        return db
    return Database(make_engine(url, threads=True), db.secret_box)


def open_database(url: str, secret_box: SecretBox) -> Database:
    """Open (and migrate) the database at a SQLAlchemy URL.

    ``secret_box`` must be the key this database's secrets were sealed with (else
    ConfigError); secrets sealed by an older key it still holds are sealed anew."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            lock_migrations(conn)  # replicas starting together: one migrates, then the next
            found = current_version(conn)
            migrate(conn, secret_box)
            check_key(conn, secret_box)
            rewritten = reseal_all(conn, secret_box)
        if rewritten or 0 < found < SEALED_SECRETS:
            scrub(engine, SECRET_TABLES)  # the secrets' former bytes must not linger
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, secret_box)
