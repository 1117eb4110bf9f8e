"""Connections: a deadline for request headers, a cap on open connections, open files.

uvicorn holds a connection open for as long as its client likes until the headers are
complete, and counts idle connections against ``limit_concurrency`` (so idle sockets
would answer real requests 503). Instead, each connection here must finish sending a
request's headers within ``header_timeout`` seconds of opening (or of the previous
answer), and when ``max_connections`` are open a new one displaces the connection that
has been idle longest, one with no request in progress, so that idle and slow-header
sockets cannot lock agents and clients out. Only when every connection is serving a
request is the newcomer closed.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("shipyard.server")

# File descriptors kept for everything but client connections: the listening socket,
# the database, bundle files being written and read, log files, subprocess pipes.
RESERVED_FILES = 256
# Used when the hard limit is "unlimited", which the kernel refuses as a soft limit.
UNLIMITED_FILES = 1 << 20


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = UNLIMITED_FILES if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, wanted, exc)
    return UNLIMITED_FILES if soft == resource.RLIM_INFINITY else soft


def connection_cap(configured: int, open_files: int) -> int:
    """``configured``, lowered if the open-file limit could not hold that many sockets."""
    fits = max(1, open_files - RESERVED_FILES)
    if fits < configured:
        log.warning(
            "max_connections %d lowered to %d: the open-file limit is %d (raise LimitNOFILE)",
            configured,
            fits,
            open_files,
        )
    return min(configured, fits)


class HeadWithBody(asyncio.Transport):
    """A response's transport that sends its head and the start of its body together.

    uvicorn writes an answer's status line and headers, then its body, as two writes:
    two ``send`` calls, two TCP segments, and on the client two wake-ups, the first for
    a head without a body. The head is held back until the body's first write (the
    same turn of the event loop for every answer built whole) and goes out with it; a
    streamed answer whose body comes later gets its head at the end of the turn. Only
    the first write is held: later body chunks go straight through, under the real
    transport's flow control.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._first = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._first:
            self._first = False
            self._held = bytes(data)
            self._loop.call_soon(self._release)
        elif self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held + data)
        else:
            self._transport.write(data)

    def _release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)


def guarded_protocol(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with a header deadline and a connection cap."""

    class GuardedHttpProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: TimerHandle | None = None
            self.idle_since = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.idle_since = self.loop.time()
            self._arm()
            if len(self.connections) > max_connections:
                self._make_room()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_deadline is None:  # the next request on a kept-alive connection
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()
            if self.cycle is not None:
                self.cycle.transport = HeadWithBody(self.transport, self.loop)

        def on_response_complete(self) -> None:
            self.idle_since = self.loop.time()
            super().on_response_complete()

        def idle(self) -> bool:
            """No request in progress: still sending headers, or between requests."""
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._header_deadline = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def _make_room(self) -> None:
            idle = [
                c
                for c in self.connections
                if isinstance(c, GuardedHttpProtocol) and c is not self and c.idle()
            ]
            if idle:
                oldest = min(idle, key=lambda c: c.idle_since)
                oldest.transport.close()
                oldest.connections.discard(oldest)  # closed: no longer counted
            else:
                log.warning("%d connections, all busy: refusing a new one", len(self.connections))
                self.transport.close()
                self.connections.discard(self)

    return GuardedHttpProtocol
