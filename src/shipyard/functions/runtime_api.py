"""The Lambda Runtime API (2018-06-01) one worker process talks to.

Each worker gets its own small HTTP/1.1 server on 127.0.0.1 (an ephemeral port, passed
as ``AWS_LAMBDA_RUNTIME_API``), so the port says which worker is asking. It serves:

    GET  /2018-06-01/runtime/invocation/next         long-polls for the next event
    POST /2018-06-01/runtime/invocation/{id}/response
    POST /2018-06-01/runtime/invocation/{id}/error
    POST /2018-06-01/runtime/init/error

The host puts an ``Invocation`` in with ``submit``; its future resolves with the
response or error body the runtime posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

PREFIX = "/2018-06-01/runtime/"
MAX_HEADER_LINES = 100
MAX_BODY = 7 * 1024 * 1024  # a 6 MB response plus its JSON framing


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


@dataclass
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RuntimeApi:
    """One worker's Runtime API endpoint."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Invocation] = asyncio.Queue()
        self._pending: dict[str, Invocation] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        # The error body of ``init/error``, once the runtime reported one.
        self.init_error: bytes | None = None
        self.port = 0

    async def start(self) -> str:
        """Listen on an ephemeral loopback port; returns ``host:port``."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def submit(self, invocation: Invocation) -> None:
        self._queue.put_nowait(invocation)

    def unfinished(self) -> list[Invocation]:
        """Invocations handed out or queued and not yet answered."""
        queued = []
        while not self._queue.empty():
            queued.append(self._queue.get_nowait())
        return [*self._pending.values(), *queued]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await _read_request(reader, writer)
                if request is None:
                    return
                status, headers, body = await self._route(request)
                _write_response(writer, status, headers, body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            return  # stop(): asyncio would log a cancelled connection task as an error
        finally:
            self._connections.discard(task)
            writer.close()

    async def _route(self, request: _Request) -> tuple[int, dict[str, str], bytes]:
        path = request.path.split("?", 1)[0]
        if not path.startswith(PREFIX):
            return _error(404, "NotFound", "Unknown Runtime API path")
        parts = path.removeprefix(PREFIX).split("/")
        if request.method == "GET" and parts == ["invocation", "next"]:
            invocation = await self._queue.get()
            self._pending[invocation.request_id] = invocation
            return 200, _event_headers(invocation), invocation.payload
        if request.method == "POST" and parts == ["init", "error"]:
            self.init_error = request.body or b"{}"
            return 202, {}, b'{"status":"OK"}'
        if request.method == "POST" and len(parts) == 3 and parts[0] == "invocation":
            answered = self._pending.pop(parts[1]) if parts[1] in self._pending else None
            if answered is None or parts[2] not in ("response", "error"):
                return _error(400, "InvalidRequestID", "Invalid request ID")
            answered.resolve(request.body, parts[2] == "error")
            return 202, {}, b'{"status":"OK"}'
        return _error(404, "NotFound", "Unknown Runtime API path")


def _event_headers(invocation: Invocation) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": invocation.invoked_arn,
        "Lambda-Runtime-Trace-Id": invocation.trace_id,
    }
    if invocation.client_context:
        headers["Lambda-Runtime-Client-Context"] = invocation.client_context
    return headers


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"errorType": kind, "errorMessage": message}).encode()
    return status, {"Content-Type": "application/json"}, body


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _Request | None:
    try:
        # The whole head at once (the stream's 64 KiB limit bounds it): one await, not
        # one per header line, on the path of every invocation.
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None  # the runtime closed its keep-alive connection
        raise
    except asyncio.LimitOverrunError:
        raise ValueError("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    if len(lines) > MAX_HEADER_LINES:
        raise ValueError("too many header lines")
    headers: dict[str, str] = {}
    for raw in lines[1:]:
        if raw:
            name, _, value = raw.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":  # curl, for bodies over 1 KiB
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        body = await reader.readexactly(length) if length else b""
    return _Request(method, path, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise ValueError("body too large")
        body += await reader.readexactly(size)
        await reader.readline()


def _write_response(
    writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes
) -> None:
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}.get(status, "")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
