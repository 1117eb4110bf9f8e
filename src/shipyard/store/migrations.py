"""The one portable migration sequence. Append, never edit a released step."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from shipyard.store import schema


def _v1_initial(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _v2_functions(conn: Connection) -> None:
    """The embedded function host's tables (new tables only)."""
    for table in (schema.functions, schema.function_versions, schema.function_aliases):
        table.create(conn, checkfirst=True)


def _v3_hook_executions(conn: Connection) -> None:
    """Lambda hook invocations awaiting their status report (a new table)."""
    schema.hook_executions.create(conn, checkfirst=True)


MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_initial,
    _v2_functions,
    _v3_hook_executions,
]


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection) -> int:
    """Bring the schema up to date; returns the resulting version."""
    version = current_version(conn)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        step(conn)
        table = schema.meta
        if number == 1:
            conn.execute(table.insert().values(key="schema_version", value="1"))
        else:
            conn.execute(
                table.update().where(table.c.key == "schema_version").values(value=str(number))
            )
        version = number
    return version
