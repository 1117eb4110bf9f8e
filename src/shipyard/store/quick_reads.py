"""The reads on every request's path, on a driver connection of their own.

Every API request reads its caller's key, and every Invoke its function's versions.
Through SQLAlchemy each of those statements cost about 50 µs (its cache key, the
result's wrapping) and the transaction around them 27 µs more, against under 10 µs on
the driver itself: a third of a warm Invoke's server CPU. Here each statement is
compiled once for the dialect and run on a connection of its own in autocommit mode,
so a read sees what was committed before it, which is all a key lookup or a version
read needs (they share no snapshot).

Only the event loop's thread reads through it. A connection the database dropped
(PostgreSQL restarting) is opened again at the next read; the failed read raises
SQLAlchemy's ``OperationalError``, as any other query would, which the API answers with
503.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import psycopg2
from sqlalchemy import ClauseElement, Engine
from sqlalchemy.exc import OperationalError

from shipyard.store.direct import Compiled, PreparedOn, Row, compile_for

# The drivers' errors for a database out of reach (restarting, failing over).
_UNREACHABLE = (sqlite3.OperationalError, psycopg2.OperationalError, psycopg2.InterfaceError)


class QuickReads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._compiled: dict[int, Compiled] = {}
        self._prepared = PreparedOn()

    def first(self, statement: ClauseElement, params: dict[str, Any]) -> Row | None:
        rows = self._run(statement, params)
        return rows[0] if rows else None

    def all(self, statement: ClauseElement, params: dict[str, Any]) -> list[Row]:
        return self._run(statement, params)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self, statement: ClauseElement, params: dict[str, Any]) -> list[Row]:
        compiled = self._compiled.get(id(statement))
        if compiled is None:  # statements are built once, at import (direct.py)
            compiled = compile_for(self._engine.dialect, statement)
            self._compiled[id(statement)] = compiled
        args = compiled.args(params)
        try:
            connection = self._connect()
            cursor = connection.cursor()
            try:
                cursor.execute(self._prepared.sql(compiled, connection, cursor), args)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except _UNREACHABLE as exc:
            self.close()  # the next read opens a new connection
            raise OperationalError(compiled.sql, args, exc) from exc

    def _connect(self) -> Any:
        if self._connection is None:
            url = self._engine.url
            if url.get_backend_name() == "sqlite":
                self._connection = sqlite3.connect(
                    url.database or "", isolation_level=None, check_same_thread=False, timeout=30
                )
            else:
                conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
                self._connection = psycopg2.connect(conninfo)
                self._connection.autocommit = True
        return self._connection


def json_value(value: Any) -> Any:
    """A JSON column's value: SQLite's driver gives its text, PostgreSQL's the value."""
    return json.loads(value) if isinstance(value, str | bytes) else value
