"""Function keys expire even when their worker was never seen to stop (a crash)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from shipyard.functions.host import FunctionHost, HostSettings
from shipyard.functions.names import MAX_TIMEOUT
from shipyard.functions.worker import Launch
from shipyard.store import credentials, open_database, schema


def test_sweep_drops_expired_function_keys_only(db_url: str, tmp_path: Path) -> None:
    db = open_database(db_url)
    settings = HostSettings(
        max_concurrency=1,
        max_function_concurrency=1,
        idle_seconds=60,
        credential_seconds=3600,
        work_dir=tmp_path / "work",
        launch=Launch(
            python="python3", endpoint_url="http://127.0.0.1:1", region="us-east-1", user=None
        ),
    )
    now = 100_000.0
    try:
        with db.tx() as conn:
            old, _ = credentials.issue_function_key(conn, "fn:1", now - 3600 - MAX_TIMEOUT - 1)
            fresh, _ = credentials.issue_function_key(conn, "fn:1", now - 10)
            admin, _ = credentials.issue(conn, "admin", "admin", 0.0)
        asyncio.run(FunctionHost(settings, db, lambda: now).sweep(now))
        with db.tx() as conn:
            left = {row[0] for row in conn.execute(select(schema.credentials.c.access_key_id))}
        assert left == {fresh, admin}
        assert old not in left
    finally:
        db.close()
