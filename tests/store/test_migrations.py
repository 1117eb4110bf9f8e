"""Every earlier schema version migrates to the current one, on SQLite and PostgreSQL.

For each version k (0 = an empty database) a database is built by running steps 1..k,
given one row in every table it has then, and migrated to the head. The result must be
the schema ``schema.metadata`` declares (tables, columns and their types, keys,
indexes), and every row must have survived (secrets sealed by step 2, whatever they were
before). Generic over ``MIGRATIONS``: a step appended later is covered as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import JSON, Connection, Engine, MetaData, Table, inspect, select
from sqlalchemy.types import TypeEngine

from shipyard.secretbox import AesGcmBox, SecretBox, new_key
from shipyard.store import open_database, schema
from shipyard.store.credentials import seal_context
from shipyard.store.dialects import lock_migrations, make_engine
from shipyard.store.migrations import MIGRATIONS, SEALED_SECRETS, current_version, migrate

SECRET = ("credentials", "secret_access_key")
PLAIN_SECRET = "plain-secret-of-an-old-install"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    built = make_engine(db_url)
    yield built
    built.dispose()


def _type_key(typ: TypeEngine[Any]) -> tuple[str, int | None]:
    """What must match between a declared and a found column type: the Python values
    it holds and, for strings, the length (TEXT has none)."""
    return typ.python_type.__name__, getattr(typ, "length", None)


def declared(metadata: MetaData) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        uniques = {tuple(c.name for c in u.columns) for u in table.constraints if _unique(u)}
        uniques |= {(c.name,) for c in table.columns if c.unique}
        described[table.name] = {
            "columns": {c.name: (_type_key(c.type), c.nullable) for c in table.columns},
            "primary key": sorted(c.name for c in table.primary_key.columns),
            "indexes": {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes},
            "unique": uniques,
        }
    return described


def _unique(constraint: Any) -> bool:
    return type(constraint).__name__ == "UniqueConstraint"


def found(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    described: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        columns = inspector.get_columns(name)
        described[name] = {
            "columns": {c["name"]: (_type_key(c["type"]), c["nullable"]) for c in columns},
            "primary key": sorted(inspector.get_pk_constraint(name)["constrained_columns"]),
            "indexes": {
                (i["name"], tuple(i["column_names"]))
                for i in inspector.get_indexes(name)
                if not i.get("duplicates_constraint")
            },
            "unique": {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)},
        }
    return described


def _value(table: str, column: dict[str, Any]) -> Any:
    if isinstance(column["type"], JSON):
        return {"table": table, "list": [1, 2]}
    python_type = column["type"].python_type
    if python_type is bool:
        return True
    if python_type is int:
        return 7
    if python_type is float:
        return 1.5
    text = f"{table}.{column['name']}"
    length = getattr(column["type"], "length", None)
    return text[-length:] if length else text


def fill(conn: Connection, box: SecretBox, version: int) -> dict[str, dict[str, Any]]:
    """One row in every table the database has at ``version`` (meta holds the version:
    left alone); the rows as inserted."""
    rows: dict[str, dict[str, Any]] = {}
    inspector = inspect(conn)
    for name in inspector.get_table_names():
        if name == schema.meta.name:
            continue
        columns = inspector.get_columns(name)
        row = {c["name"]: _value(name, c) for c in columns}
        if name == SECRET[0]:
            # An install before step 2 stored secrets in plaintext; after, sealed.
            key_id = row["access_key_id"]
            row[SECRET[1]] = (
                PLAIN_SECRET
                if version < SEALED_SECRETS
                else box.seal(PLAIN_SECRET, seal_context(key_id))
            )
        table = Table(name, MetaData(), autoload_with=conn)
        conn.execute(table.insert().values(**row))
        rows[name] = row
    return rows


def check_rows(conn: Connection, box: SecretBox, rows: dict[str, dict[str, Any]]) -> None:
    for name, row in rows.items():
        table = schema.metadata.tables[name]
        key = [c.name for c in table.primary_key.columns]
        query = select(table).where(*(table.c[k] == row[k] for k in key))
        (stored,) = conn.execute(query).mappings().all()
        for column, value in row.items():
            if (name, column) == SECRET:
                opened = box.open(stored[column], seal_context(row["access_key_id"]))
                assert opened == PLAIN_SECRET
            else:
                assert stored[column] == value, f"{name}.{column}"


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_every_earlier_version_migrates_to_the_current_schema_keeping_its_rows(
    engine: Engine, version: int
) -> None:
    box = AesGcmBox([new_key()])
    with engine.begin() as conn:
        assert migrate(conn, box, upto=version) == version
        rows = fill(conn, box, version)
    with engine.begin() as conn:
        assert current_version(conn) == version
        assert migrate(conn, box) == len(MIGRATIONS)
    with engine.begin() as conn:
        assert found(conn) == declared(schema.metadata)
        check_rows(conn, box, rows)


def test_step_one_is_the_first_release_whatever_the_current_schema(engine: Engine) -> None:
    """Step 1 alone makes the frozen first schema, not today's (later tables absent)."""
    from shipyard.store import schema_v1

    with engine.begin() as conn:
        migrate(conn, AesGcmBox([new_key()]), upto=1)
        assert found(conn) == declared(schema_v1.metadata)
        assert set(found(conn)) < set(declared(schema.metadata))


def test_replicas_starting_at_once_migrate_one_after_the_other(pg_url: str) -> None:
    """Several servers opening a fresh PostgreSQL database at the same moment: every one
    starts, on a schema migrated once (without the lock, the second CREATE TABLE of the
    same table fails)."""
    key = new_key()
    starting = 4
    barrier = threading.Barrier(starting)
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            open_database(pg_url, AesGcmBox([key])).close()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            lock_migrations(conn)
            assert current_version(conn) == len(MIGRATIONS)
            assert found(conn) == declared(schema.metadata)
    finally:
        engine.dispose()
