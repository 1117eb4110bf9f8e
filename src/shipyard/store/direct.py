"""The statements every lifecycle event runs, on the driver's cursor directly.

SQLAlchemy's ``Connection.execute`` costs about 40 µs beyond the driver's own work per
statement (its cache key, the execution context, the result's wrapping), and a
lifecycle event runs about five statements: a third of the server's CPU per
host-event. Here a statement is compiled once per connection (kept in the pooled
connection's ``info``) and run on the DBAPI cursor of the caller's connection, so it
is part of the caller's transaction like any other. Bind values go through the
column types' own bind processors (JSON), and driver errors come out as SQLAlchemy's
exceptions, as from ``execute``.

On PostgreSQL each statement is also prepared once per session (``PREPARE``, then
``EXECUTE`` with the values): psycopg2 sends every statement as text, which the server
would otherwise parse and plan at each execution.

Only for statements without expanding parameters (``IN`` lists); what they return
comes back as plain tuples, JSON columns undecoded (``quick_reads.json_value``).
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ClauseElement, Connection, Dialect
from sqlalchemy.exc import CompileError, DBAPIError, StatementError
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
    # PostgreSQL: (PREPARE statement, EXECUTE statement taking the values by name)
    prepared: tuple[str, str] | None = None

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
    prepared = _prepared_form(compiled, dialect) if dialect.name == "postgresql" else None
    return Compiled(statement, compiled.string, positions, defaults, processors, prepared)


_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _prepared_form(compiled: SQLCompiler, dialect: Dialect) -> tuple[str, str] | None:
    """``PREPARE`` and ``EXECUTE`` for a pyformat statement, its parameters typed by
    their columns; None for a statement with a parameter of no known type."""
    order: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match[1] not in order:
            order.append(match[1])
        return f"${order.index(match[1]) + 1}"

    body = _NAMED_PARAMETER.sub(positional, compiled.string).replace("%%", "%")
    try:
        types = [compiled.binds[name].type.compile(dialect=dialect) for name in order]
    except (CompileError, KeyError):
        return None
    name = "shipyard_" + hashlib.sha1(compiled.string.encode()).hexdigest()[:16]
    typed = f" ({', '.join(types)})" if types else ""
    values = f"({', '.join(f'%({p})s' for p in order)})" if order else ""
    return f"PREPARE {name}{typed} AS {body}", f"EXECUTE {name}{values}"


class PreparedOn:
    """Which statements the current driver connection has prepared: a connection
    opened anew (after PostgreSQL restarted) has none."""

    def __init__(self) -> None:
        self._connection: weakref.ref[Any] | None = None
        self._names: set[str] = set()

    def sql(self, compiled: Compiled, driver_connection: Any, cursor: Any) -> str:
        """The SQL to run ``compiled`` with, preparing it first where needed."""
        if compiled.prepared is None:
            return compiled.sql
        if self._connection is None or self._connection() is not driver_connection:
            self._connection, self._names = weakref.ref(driver_connection), set()
        prepare, execute = compiled.prepared
        if prepare not in self._names:
            cursor.execute(prepare)  # not transactional: it outlives a rollback
            self._names.add(prepare)
        return execute


def run(conn: Connection, statement: ClauseElement, params: Params) -> list[Row]:
    """Execute in ``conn``'s transaction; the rows it returns (none for most writes)."""
    compiled = _compiled(conn, statement)
    return _on_cursor(conn, compiled, compiled.args(params), many=False)


def run_many(conn: Connection, statement: ClauseElement, rows: Sequence[Params]) -> None:
    compiled = _compiled(conn, statement)
    _on_cursor(conn, compiled, [compiled.args(params) for params in rows], many=True)


def _on_cursor(conn: Connection, compiled: Compiled, args: Any, *, many: bool) -> list[Row]:
    driver_connection = conn.connection.driver_connection
    cursor = driver_connection.cursor()  # type: ignore[union-attr]
    prepared: PreparedOn | None = conn.info.get("shipyard_prepared")
    if prepared is None:  # built once per connection, not per statement
        prepared = conn.info["shipyard_prepared"] = PreparedOn()
    try:
        sql = prepared.sql(compiled, driver_connection, cursor)
        if many:
            cursor.executemany(sql, args)
            return []
        cursor.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _wrapped(conn, compiled.sql, args, exc) from exc
    finally:
        cursor.close()


def _compiled(conn: Connection, statement: ClauseElement) -> Compiled:
    cache: dict[int, Compiled] | None = conn.info.get("shipyard_compiled")
    if cache is None:
        cache = conn.info["shipyard_compiled"] = {}
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
