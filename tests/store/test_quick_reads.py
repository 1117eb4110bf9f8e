"""The reads outside transactions (store/quick_reads.py) on SQLite and PostgreSQL: they
see what was committed, decode JSON the same on both, and a connection the database
dropped is opened again after one failed read."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import credentials, functions, open_database

_BACKEND = select(func.pg_backend_pid())


def test_quick_reads_see_commits_and_decode_docs(db_url: str) -> None:
    db = open_database(db_url, AesGcmBox([new_key()]))
    try:
        reads, box = db.quick, db.secret_box
        assert credentials.find_key(reads, box, "AKSIMISSING") is None
        assert functions.read_version(reads, "fn", "$LATEST") is None
        with db.tx() as conn:
            key_id, secret = credentials.issue(conn, box, "instance", "host-1", 1.0)
            latest = {"FunctionName": "fn", "Version": "$LATEST", "Environment": {"A": "1"}}
            functions.create(conn, "fn", latest, 1.0)
            functions.create_alias(conn, "fn", {"Name": "live", "FunctionVersion": "$LATEST"})
        assert credentials.find_key(reads, box, key_id) == (secret, "instance", "host-1", "")
        assert functions.read_version(reads, "fn", "$LATEST") == latest
        assert functions.read_alias(reads, "fn", "live") == {
            "Name": "live",
            "FunctionVersion": "$LATEST",
        }
        with db.tx() as conn:
            credentials.revoke_principal(conn, "instance", "host-1")
        assert credentials.find_key(reads, box, key_id) is None  # revoked at once
    finally:
        db.close()


def test_a_dropped_connection_fails_one_read_then_reconnects(pg_url: str) -> None:
    db = open_database(pg_url, AesGcmBox([new_key()]))
    try:
        assert functions.read_version(db.quick, "fn", "$LATEST") is None
        backend = db.quick.first(_BACKEND, {})
        assert backend is not None
        # What a PostgreSQL restart does to an open connection.
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend[0],))
        with pytest.raises(OperationalError):  # the API answers it with 503
            functions.read_version(db.quick, "fn", "$LATEST")
        assert functions.read_version(db.quick, "fn", "$LATEST") is None
        again = db.quick.first(_BACKEND, {})
        assert again is not None and again[0] != backend[0]
    finally:
        db.close()
