"""Statements run on the driver directly (store/direct.py), on SQLite and PostgreSQL:
inside the caller's transaction, JSON bound by the column type, driver errors raised
as SQLAlchemy's, and a statement that relies on SQLAlchemy's column defaults refused."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import direct, open_database, schema
from shipyard.store.quick_reads import json_value

F = schema.function_versions
_SET_DOC = (
    update(F)
    .where((F.c.function_name == bindparam("name")) & (F.c.version == bindparam("v")))
    .values(doc=bindparam("new_doc", type_=F.c.doc.type))
    .returning(F.c.version)
)
_DOC = select(F.c.doc).where(F.c.function_name == bindparam("name"))


def test_direct_statements_share_the_callers_transaction(db_url: str) -> None:
    db = open_database(db_url, AesGcmBox([new_key()]))
    try:
        with db.tx() as conn:
            conn.execute(schema.functions.insert().values(name="fn", last_version=0, created=1.0))
            conn.execute(F.insert().values(function_name="fn", version="1", doc={"A": 1}))
        with db.tx() as conn:
            assert direct.run(conn, _SET_DOC, {"name": "fn", "v": "1", "new_doc": {"A": 2}}) == [
                ("1",)
            ]
            (row,) = direct.run(conn, _DOC, {"name": "fn"})
            assert json_value(row[0]) == {"A": 2}  # seen in the same transaction
        with pytest.raises(RuntimeError), db.tx() as conn:
            direct.run(conn, _SET_DOC, {"name": "fn", "v": "1", "new_doc": {"A": 3}})
            raise RuntimeError("the caller fails: everything it wrote goes")
        with db.tx() as conn:
            assert conn.execute(select(F.c.doc)).scalar_one() == {"A": 2}
        duplicate = F.insert().values(
            function_name=bindparam("name"),
            version=bindparam("v"),
            doc=bindparam("d", type_=F.c.doc.type),
        )
        with pytest.raises(IntegrityError), db.tx() as conn:
            direct.run(conn, duplicate, {"name": "fn", "v": "1", "d": {}})
    finally:
        db.close()


def test_a_statement_leaving_column_defaults_to_sqlalchemy_is_refused(db_url: str) -> None:
    db = open_database(db_url, AesGcmBox([new_key()]))
    try:
        # output_bytes has a Python-side default: SQLAlchemy would fill it in, the driver not.
        insert = schema.host_commands.insert().values(
            instance_name="h", deployment_id="d", command_name="X", status="Pending", created=1.0
        )
        with pytest.raises(ValueError, match="output_bytes"), db.tx() as conn:
            direct.run(conn, insert, {})
    finally:
        db.close()
