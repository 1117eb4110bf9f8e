"""The Lambda Runtime API (2018-06-01) one worker process talks to.

Each worker gets its own small HTTP/1.1 server on 127.0.0.1 (an ephemeral port, passed
as ``AWS_LAMBDA_RUNTIME_API``), so the port says which worker is asking. It serves:

    GET  /2018-06-01/runtime/invocation/next         long-polls for the next event
    POST /2018-06-01/runtime/invocation/{id}/response
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

The host puts an ``Invocation`` in with ``submit``; its future resolves with the
response or error body the runtime posts.

Every invocation crosses this server twice, so it is an ``asyncio.Protocol`` with
httptools' parser (a uvicorn dependency) rather than streams and a task per connection:
``submit`` writes the event straight to the connection whose ``next`` is waiting, and
the runtime's post resolves the invocation from ``data_received``, with no task woken
in between.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import cast

import httptools

PREFIX = "/2018-06-01/runtime/"
MAX_HEAD = 64 * 1024  # request line and headers
MAX_HEADER_LINES = 100
MAX_BODY = 7 * 1024 * 1024  # a 6 MB response plus its JSON framing
ACCEPTED = b'{"status":"OK"}'


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    invoked_arn: str
    trace_id: str
    client_context: str = ""
    # (body, is_error), set by the runtime's response or error post.
    result: asyncio.Future[tuple[bytes, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def resolve(self, body: bytes, is_error: bool) -> None:
        if not self.result.done():
            self.result.set_result((body, is_error))


class RuntimeApi:
    """One worker's Runtime API endpoint."""

    def __init__(self) -> None:
        self._queue: deque[Invocation] = deque()
        # Connections whose ``next`` waits for an invocation, oldest first.
        self._waiting: deque[_Connection] = deque()
        self._pending: dict[str, Invocation] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        # The error body of ``init/error``, once the runtime reported one.
        self.init_error: bytes | None = None
        self.port = 0

    async def start(self) -> str:
        """Listen on an ephemeral loopback port; returns ``host:port``."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        self._waiting.clear()

    def submit(self, invocation: Invocation) -> None:
        while self._waiting:
            connection = self._waiting.popleft()
            connection.waiting = False
            if connection.open:
                self._hand_out(connection, invocation)
                return
        self._queue.append(invocation)

    def unfinished(self) -> list[Invocation]:
        """Invocations handed out or queued and not yet answered."""
        queued = list(self._queue)
        self._queue.clear()
        return [*self._pending.values(), *queued]

    def _hand_out(self, connection: _Connection, invocation: Invocation) -> None:
        self._pending[invocation.request_id] = invocation
        connection.respond(200, _event_headers(invocation), invocation.payload)

    def _handle(self, connection: _Connection, method: bytes, path: str, body: bytes) -> None:
        """Answer one request (``next`` with no invocation queued answers later)."""
        path = path.split("?", 1)[0]
        if not path.startswith(PREFIX):
            connection.respond(*_error(404, "NotFound", "Unknown Runtime API path"))
            return
        parts = path.removeprefix(PREFIX).split("/")
        if method == b"GET" and parts == ["invocation", "next"]:
            if self._queue:
                self._hand_out(connection, self._queue.popleft())
            else:
                connection.wait()
                self._waiting.append(connection)
            return
        if method == b"POST" and parts == ["init", "error"]:
            self.init_error = body or b"{}"
            connection.respond(202, b"", ACCEPTED)
            return
        if method == b"POST" and len(parts) == 3 and parts[0] == "invocation":
            answered = self._pending.pop(parts[1]) if parts[1] in self._pending else None
            if answered is None or parts[2] not in ("response", "error"):
                connection.respond(*_error(400, "InvalidRequestID", "Invalid request ID"))
                return
            answered.resolve(body, parts[2] == "error")
            connection.respond(202, b"", ACCEPTED)
            return
        connection.respond(*_error(404, "NotFound", "Unknown Runtime API path"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection from the runtime; requests are answered in order."""

    def __init__(self, api: RuntimeApi) -> None:
        self.api = api
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.open = False
        # Its ``next`` waits for an invocation. Reading goes on meanwhile, so that a
        # runtime hanging up is noticed (and not handed the next invocation).
        self.waiting = False
        self._url = b""
        self._body = bytearray()
        self._head_size = 0
        self._header_lines = 0

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.open = True
        self.api._connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade, ValueError):
            self.close()  # malformed, too large, or an upgrade: drop the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.api._connections.discard(self)
        if self.waiting:
            self.api._waiting.remove(self)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._body.clear()
        self._head_size = 0
        self._header_lines = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every request: kept to the few checks it needs.
        self._header_lines += 1
        self._head_size += len(name) + len(value)
        if self._header_lines > MAX_HEADER_LINES or self._head_size > MAX_HEAD:
            raise ValueError("request head too large")
        # curl asks before sending a body over 1 KiB
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if len(self._body) + len(body) > MAX_BODY:
            raise ValueError("body too large")
        self._body += body

    def on_message_complete(self) -> None:
        if self.waiting:  # a request sent before the last one was answered
            raise ValueError("request while waiting for the next invocation")
        path = self._url.decode("latin-1")
        self.api._handle(self, self.parser.get_method(), path, bytes(self._body))

    # -- answering ---------------------------------------------------------------------

    def wait(self) -> None:
        """Answer the current request later (``next`` with nothing queued)."""
        self.waiting = True

    def respond(self, status: int, headers: bytes, body: bytes) -> None:
        self.waiting = False
        reason = _REASONS.get(status, b"")
        self._write(
            b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n%s"
            % (status, reason, headers, len(body), body)
        )

    def close(self) -> None:
        self.open = False
        if self.waiting:
            self.waiting = False
            self.api._waiting.remove(self)
        if self.transport is not None:
            self.transport.close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            raise ValueError("request head too large")


_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 404: b"Not Found"}


def _event_headers(invocation: Invocation) -> bytes:
    lines = (
        b"Content-Type: application/json\r\n"
        b"Lambda-Runtime-Aws-Request-Id: %s\r\n"
        b"Lambda-Runtime-Deadline-Ms: %d\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: %s\r\n"
        b"Lambda-Runtime-Trace-Id: %s\r\n"
        % (
            invocation.request_id.encode(),
            invocation.deadline_ms,
            invocation.invoked_arn.encode(),
            invocation.trace_id.encode(),
        )
    )
    if invocation.client_context:
        # JSON: a line break can only be whitespace between tokens, never in a string.
        context = invocation.client_context.encode().replace(b"\r", b" ").replace(b"\n", b" ")
        lines += b"Lambda-Runtime-Client-Context: %s\r\n" % context
    return lines


def _error(status: int, kind: str, message: str) -> tuple[int, bytes, bytes]:
    body = json.dumps({"errorType": kind, "errorMessage": message}).encode()
    return status, b"Content-Type: application/json\r\n", body
