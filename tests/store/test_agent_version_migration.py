"""Migration step 7 (instances.agent_version) on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, select

from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import instances, open_database, schema, schema_v1
from shipyard.store.dialects import make_engine
from shipyard.store.migrations import MIGRATIONS, migrate

STEP = [m.__name__ for m in MIGRATIONS].index("_v7_agent_version") + 1


def _columns(conn: object) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns("instances")}


def test_a_version_6_database_gains_the_column_and_keeps_its_instances(db_url: str) -> None:
    engine = make_engine(db_url)
    box = AesGcmBox([new_key()])
    try:
        with engine.begin() as conn:
            # A database as version 6 left it: instances without the column, with a row.
            migrate(conn, box, upto=STEP - 1)
            conn.execute(
                schema_v1.instances.insert().values(
                    name="old-1",
                    iam_arn="arn:aws:iam::000000000000:user/old-1",
                    registered=True,
                    register_time=1.0,
                    last_seen=2.0,
                    doc={},
                )
            )
            assert "agent_version" not in _columns(conn)
        with engine.begin() as conn:
            assert migrate(conn, box) == len(MIGRATIONS)
            assert "agent_version" in _columns(conn)
            c = schema.instances.c
            row = conn.execute(
                select(c.name, c.last_seen, c.agent_version).where(c.name == "old-1")
            ).one()
            assert tuple(row) == ("old-1", 2.0, None)
    finally:
        engine.dispose()


def test_a_new_database_reports_no_version_until_an_agent_says(db_url: str) -> None:
    db = open_database(db_url, AesGcmBox([new_key()]))
    try:
        with db.tx() as conn:
            conn.execute(
                schema.instances.insert().values(
                    name="new-1",
                    iam_arn="arn:aws:iam::000000000000:user/new-1",
                    registered=True,
                    register_time=1.0,
                    doc={},
                )
            )
            (entry,) = instances.fleet_status(conn)
            assert (entry["instanceName"], entry["agentVersion"]) == ("new-1", None)
            conn.execute(schema.instances.update().values(agent_version="shipyard 1.0"))
            (entry,) = instances.fleet_status(conn)
            assert entry["agentVersion"] == "shipyard 1.0"
    finally:
        db.close()
