"""Server-sent events: a deployment page's state and hook output, the overview's cue.

The server reads the deployment's row version and its last hook output row every
``TICK`` seconds (two indexed one-row queries) and sends the page a new state when the
version moved and the new output chunks when there are some; the browser never polls.
The stream ends when the session does (signed out, expired, key revoked).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from shipyard.console.views import deployment_view
from shipyard.server.context import Principal, Services
from shipyard.store import console_reads
from shipyard.store import deployments as deployment_store

TICK = 0.1  # seconds between checks: well inside the 250 ms goal for a change to show
OVERVIEW_TICK = 0.5
KEEPALIVE_SECONDS = 15.0
SESSION_CHECK_SECONDS = 5.0


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One event; ``event_id`` (the last hook output row sent) comes back as the
    Last-Event-ID header when the browser reconnects, so no output is sent twice."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def deployment_events(
    services: Services,
    deployment_id: str,
    principal: Principal,
    still_signed_in: Callable[[], bool],
    log_id: int = 0,
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    version: int | None = None
    last_sent = checked = loop.time()
    yield "retry: 1000\n\n"
    while True:
        with services.db.tx() as conn:
            now_version = deployment_store.version(conn, deployment_id)
            mark = console_reads.log_mark(conn, deployment_id)
            chunks = console_reads.logs_after(conn, deployment_id, log_id) if mark > log_id else []
        if now_version is None:
            yield sse("gone", {"id": deployment_id})
            return
        if now_version != version:
            stored = services.runner.current(deployment_id)
            if stored is not None:
                version = now_version
                yield sse("state", deployment_view(services, stored, principal))
                last_sent = loop.time()
        if chunks:
            log_id = chunks[-1][0]
            texts = [{"target": t, "event": e, "text": c} for _, t, e, c in chunks]
            yield sse("logs", texts, log_id)
            last_sent = loop.time()
        if loop.time() - last_sent > KEEPALIVE_SECONDS:
            yield ": keepalive\n\n"
            last_sent = loop.time()
        if loop.time() - checked > SESSION_CHECK_SECONDS:
            if not still_signed_in():
                yield sse("signed-out", {})
                return
            checked = loop.time()
        await asyncio.sleep(TICK)


async def overview_events(
    services: Services, still_signed_in: Callable[[], bool]
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    mark: Any = None
    checked = loop.time()
    yield "retry: 2000\n\n"
    while True:
        with services.db.tx() as conn:
            now_mark = console_reads.activity_mark(conn)
        if now_mark != mark:
            if mark is not None:
                yield sse("changed", {})
            mark = now_mark
        if loop.time() - checked > SESSION_CHECK_SECONDS:
            if not still_signed_in():
                yield sse("signed-out", {})
                return
            checked = loop.time()
            yield ": keepalive\n\n"
        await asyncio.sleep(OVERVIEW_TICK)
