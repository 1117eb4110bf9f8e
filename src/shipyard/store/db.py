"""Database handle: engine, migrations, transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from shipyard.store.dialects import make_engine
from shipyard.store.migrations import migrate


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Open (and migrate) the database at a SQLAlchemy URL."""
    engine = make_engine(url)
    with engine.begin() as conn:
        migrate(conn)
    return Database(engine)
