"""The Deliverer: sends queued trigger notifications to their webhooks.

An asyncio task wakes every ``poll_seconds``, claims due Pending deliveries (at most
``concurrency`` in flight) and POSTs each in its own small thread pool, so a slow or
dead webhook occupies a pool thread, never the event loop, never a deployment, and
never the default executor other workers use. Database work stays on the event loop
thread (SQLite's one shared connection lives there).

Each request carries the JSON payload, signed with the trigger's secret::

    X-Shipyard-Signature: sha256=<hex HMAC-SHA256 of the body>
    X-Shipyard-Delivery: <delivery id>
    X-Shipyard-Event: <event type>

A 2xx answer means Delivered. Anything else (an error status, a redirect, a timeout,
a refused connection) is retried after ``retry_base * 2**(attempts - 1)`` seconds
(1, 2, 4, ... s by default) until ``max_attempts`` have failed, then the delivery is
Failed with the last error kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shipyard import notify
from shipyard.server.context import Services
from shipyard.store import deliveries
from shipyard.store.deliveries import Delivery

log = logging.getLogger("shipyard.notify")

USER_AGENT = "Shipyard-Notifications/1"
MAX_ERROR_CHARS = 500


def signature(secret: str, body: bytes) -> str:
    """The ``X-Shipyard-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be resent as a GET without its body: treat it as failed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> str | None:
    """POST ``body``; None when the webhook answered 2xx, else a readable error.
    Blocking: run it in a thread."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(64 * 1024)  # let the server finish; the content is not used
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return f"HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"cannot reach {url}: {exc.reason}"
    except (TimeoutError, OSError, ValueError) as exc:
        return f"cannot deliver to {url}: {exc or type(exc).__name__}"
    return None if 200 <= status < 300 else f"HTTP {status}"


class Deliverer:
    """A server worker (``start()`` / ``await stop()``) delivering trigger notifications."""

    def __init__(
        self,
        services: Services,
        *,
        retry_base: float = 1.0,
        max_attempts: int = 8,
        timeout: float = 10.0,
        concurrency: int = 8,
        poll_seconds: float = 0.2,
    ) -> None:
        self.services = services
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        # A claimed row is not offered again before the request has surely ended.
        self.lease = timeout + 5.0
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="shipyard-notify")
        self._task = asyncio.get_running_loop().create_task(self._run())

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Stop sending. Deliveries in flight stay Pending and are sent again after a
        restart (their lease runs out), so a receiver may see one twice."""
        tasks = [t for t in (self._task, *self._sending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        while True:
            try:
                self.dispatch_due()
            except Exception:
                log.exception("trigger delivery round failed")
            await asyncio.sleep(self.poll_seconds)

    def dispatch_due(self) -> int:
        """Start sending the deliveries that are due, as far as concurrency allows."""
        room = self.concurrency - len(self._sending)
        if room <= 0:
            return 0
        with self.services.db.tx() as conn:
            due = deliveries.claim_due(conn, self.services.clock(), room, self.lease)
        loop = asyncio.get_running_loop()
        for delivery in due:
            task = loop.create_task(self._send(delivery))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(due)

    async def _send(self, delivery: Delivery) -> None:
        attempts = delivery.attempts + 1
        body = encode(delivery.payload)
        try:
            headers = self._headers(delivery, body)
        except Exception as exc:  # e.g. the database is unreachable: counts as an attempt
            log.exception("cannot prepare delivery %s", delivery.id)
            self._record(delivery.id, attempts, f"cannot prepare the delivery: {exc}")
            return
        loop = asyncio.get_running_loop()
        error = await loop.run_in_executor(
            self._pool, post, delivery.url, body, headers, self.timeout
        )
        self._record(delivery.id, attempts, error)

    def _headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        with self.services.db.tx() as conn:
            group_id = deliveries.deployment_group_id(conn, delivery.deployment_id)
        if group_id is None:
            raise LookupError(f"deployment {delivery.deployment_id} has no deployment group id")
        secret = notify.trigger_secret(self.services.db, group_id, delivery.trigger_name)
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Shipyard-Signature": signature(secret, body),
            "X-Shipyard-Delivery": str(delivery.id),
            "X-Shipyard-Event": delivery.event_type,
        }

    def _record(self, delivery_id: int, attempts: int, error: str | None) -> None:
        """Keep the outcome; if even that fails the lease runs out and it is sent again."""
        gave_up = attempts >= self.max_attempts
        result = "delivered" if error is None else "failed" if gave_up else "retry"
        self.services.metrics.delivery(result)
        try:
            self._write_outcome(delivery_id, attempts, error)
        except Exception:
            log.exception("cannot record the outcome of delivery %s", delivery_id)

    def _write_outcome(self, delivery_id: int, attempts: int, error: str | None) -> None:
        now = self.services.clock()
        with self.services.db.tx() as conn:
            if error is None:
                deliveries.mark_delivered(conn, delivery_id, attempts, now)
                return
            error = error[:MAX_ERROR_CHARS]
            if attempts >= self.max_attempts:
                log.warning(
                    "delivery %s failed after %d attempts: %s", delivery_id, attempts, error
                )
                deliveries.mark_failed(conn, delivery_id, attempts, error)
            else:
                delay = self.retry_base * 2 ** (attempts - 1)
                deliveries.mark_retry(conn, delivery_id, attempts, now + delay, error)
