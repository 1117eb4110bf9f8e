"""The statements every lifecycle event runs, on the driver's cursor directly.

SQLAlchemy's ``Connection.execute`` costs about 40 µs beyond the driver's own work per
statement (its cache key, the execution context, the result's wrapping), and a
lifecycle event runs about five statements: a third of the server's CPU per
host-event. Here a statement is compiled once per connection (kept in the pooled
connection's ``info``) and run on the DBAPI cursor of the caller's connection, so it
is part of the caller's transaction like any other. Bind values go through the
column types' own bind processors (JSON), and driver errors come out as SQLAlchemy's
exceptions, as from ``execute``.

Only for statements without expanding parameters (``IN`` lists); what they return
comes back as plain tuples, JSON columns undecoded (``quick_reads.json_value``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ClauseElement, Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]
Params = dict[str, Any]


@dataclass(frozen=True)
class Compiled:
    statement: ClauseElement  # held so that its id is not reused while cached
    sql: str
    # qmark drivers (sqlite3) take values in this order; pyformat (psycopg) by name
    positions: Sequence[str] | None
    defaults: Params  # values compiled into the statement (literals, ``version + 1``)
    processors: dict[str, Callable[[Any], Any]]

    def args(self, params: Params) -> Any:
        values = {**self.defaults, **params}  # a copy: the caller's dict stays as given
        for name, process in self.processors.items():
            values[name] = process(values[name])
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)


def compile_for(dialect: Dialect, statement: ClauseElement) -> Compiled:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    prefetched = [
        *getattr(compiled, "insert_prefetch", ()),
        *getattr(compiled, "update_prefetch", ()),
    ]
    if prefetched:
        # SQLAlchemy computes Python-side column defaults at each execution; here
        # they would be NULL. Such a statement must give those values itself.
        names = ", ".join(column.name for column in prefetched)
        raise ValueError(f"the statement leaves column defaults to SQLAlchemy: {names}")
    processors: dict[str, Callable[[Any], Any]] = {}
    defaults: Params = {}
    for name, bind in compiled.binds.items():
        if not bind.required:
            defaults[name] = bind.value
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    positions: Sequence[str] | None = getattr(compiled, "positiontup", None)
    return Compiled(statement, compiled.string, positions, defaults, processors)


def run(conn: Connection, statement: ClauseElement, params: Params) -> list[Row]:
    """Execute in ``conn``'s transaction; the rows it returns (none for most writes)."""
    compiled = _compiled(conn, statement)
    return _on_cursor(conn, compiled, compiled.args(params), many=False)


def run_many(conn: Connection, statement: ClauseElement, rows: Sequence[Params]) -> None:
    compiled = _compiled(conn, statement)
    _on_cursor(conn, compiled, [compiled.args(params) for params in rows], many=True)


def _on_cursor(conn: Connection, compiled: Compiled, args: Any, *, many: bool) -> list[Row]:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(compiled.sql, args)
            return []
        cursor.execute(compiled.sql, args)
        return list(cursor.fetchall()) if cursor.description else []
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, compiled.sql, args, exc) from exc
    finally:
        cursor.close()


def _compiled(conn: Connection, statement: ClauseElement) -> Compiled:
    cache: dict[int, Compiled] = conn.info.setdefault("shipyard_compiled", {})
    found = cache.get(id(statement))
    if found is None:
        found = cache[id(statement)] = compile_for(conn.dialect, statement)
    return found


def _wrapped(conn: Connection, sql: str, args: Any, exc: Any) -> StatementError:
    if conn.dialect.is_disconnect(exc, None, None):
        # PostgreSQL went away (restarted): what SQLAlchemy does on a disconnect, this
        # connection dropped and the idle ones closed, so the next transactions reconnect.
        conn.invalidate()
        conn.engine.pool.dispose()
    wrapped: StatementError = DBAPIError.instance(sql, args, exc, conn.dialect.loaded_dbapi.Error)
    return wrapped
