"""A small real web app for traffic tests: a threaded HTTP server on 127.0.0.1.

- ``GET /health``: 200 "ok" (what HAProxy's health check asks);
- ``GET /sleep/<ms>``: holds the request open for that many milliseconds, then 200;
- any other GET: 200.

HTTP/1.0, one request per connection, as simple as an app gets.

Every answer's body is the app's name, so a test sees which server took a request.
``wait_in_flight`` lets a test know a slow request has reached the app before it acts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a load test must not meet a full accept queue
    app: WebApp

    def handle_error(self, request: Any, client_address: Any) -> None:
        # HAProxy's health checks hang up as soon as they have read the status line;
        # that is how checks work, not an error worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        app = self.server.app
        if self.path == "/health":  # checks are not traffic: not counted as in flight
            self._answer(b"ok")
            return
        with app.in_flight():
            if self.path.startswith("/sleep/"):
                time.sleep(int(self.path.removeprefix("/sleep/")) / 1000)
            self._answer(app.name.encode())
            app.completed.append((self.path, time.monotonic()))

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebApp:
    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self._in_flight = 0
        # (path, time.monotonic() once the answer was written) of every request served
        self.completed: list[tuple[str, float]] = []
        self._changed = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebApp:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.app = self
        self.port = server.server_address[1]  # kept, so a restart comes back on it
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._thread is not None:
            self._thread.join()

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a request as in flight while the block runs."""
        self._add(1)
        try:
            yield
        finally:
            self._add(-1)

    def wait_in_flight(self, count: int, timeout: float = 5.0) -> None:
        """Return once ``count`` requests are being handled (AssertionError on timeout)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._in_flight >= count, timeout):
                raise AssertionError(f"{self.name}: {count} requests never arrived")

    def _add(self, delta: int) -> None:
        with self._changed:
            self._in_flight += delta
            self._changed.notify_all()
