"""The function tables on SQLite and PostgreSQL: the migration step and the queries."""

from __future__ import annotations

from sqlalchemy import inspect

from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import functions, open_database, schema
from shipyard.store.credentials import seal_context
from shipyard.store.dialects import make_engine
from shipyard.store.migrations import MIGRATIONS, current_version, migrate


def test_functions_versions_and_aliases(db_url: str) -> None:
    db = open_database(db_url, AesGcmBox([new_key()]))
    try:
        with db.tx() as conn:
            functions.create(conn, "fn", {"FunctionName": "fn", "Version": "$LATEST", "A": 1}, 1.0)
            assert functions.exists(conn, "fn")
            assert functions.publish(conn, "fn", {"FunctionName": "fn", "A": 1}) == "1"
            functions.put_latest(conn, "fn", {"FunctionName": "fn", "Version": "$LATEST", "A": 2})
            assert functions.publish(conn, "fn", {"FunctionName": "fn", "A": 2}) == "2"
            functions.delete_version(conn, "fn", "2")
            # Numbers are never reused.
            assert functions.publish(conn, "fn", {"FunctionName": "fn", "A": 3}) == "3"
            assert [d["Version"] for d in functions.versions(conn, "fn")] == ["$LATEST", "1", "3"]
            functions.create_alias(conn, "fn", {"Name": "live", "FunctionVersion": "1"})
            functions.put_alias(conn, "fn", {"Name": "live", "FunctionVersion": "3"})
            assert functions.get_alias(conn, "fn", "live") == {
                "Name": "live",
                "FunctionVersion": "3",
            }
            assert len(functions.all_versions(conn, published=True)) == 3
            functions.delete(conn, "fn")
            assert not functions.exists(conn, "fn")
            assert functions.aliases(conn, "fn") == []
            assert functions.all_versions(conn, published=True) == []
    finally:
        db.close()


def test_migration_step_adds_the_tables_to_the_database_before_it(db_url: str) -> None:
    step = [m.__name__ for m in MIGRATIONS].index("_v4_functions") + 1
    engine = make_engine(db_url)
    new = {"functions", "function_versions", "function_aliases"}
    box = AesGcmBox([new_key()])
    try:
        with engine.begin() as conn:
            # A database as the step before left it, with a row.
            migrate(conn, box, upto=step - 1)
            assert not new & set(inspect(conn).get_table_names())
            conn.execute(
                schema.credentials.insert().values(
                    access_key_id="AKSYKEPT",
                    secret_access_key=box.seal("s", seal_context("AKSYKEPT")),
                    principal_type="admin",
                    principal_name="admin",
                    created=1.0,
                )
            )
        with engine.begin() as conn:
            assert migrate(conn, box) == len(MIGRATIONS)
            assert current_version(conn) == len(MIGRATIONS)
            assert new <= set(inspect(conn).get_table_names())
            assert conn.execute(schema.credentials.select()).first() is not None
    finally:
        engine.dispose()
