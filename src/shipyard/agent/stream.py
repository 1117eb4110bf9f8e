"""Live script output: batched into PostHostCommandUpdate calls by one background thread.

Scripts write through ``OutputStreamer.open(command_id)``; that only appends to a buffer,
so a slow or unreachable server never holds a script up. The flusher thread sends what
has gathered every ``interval`` seconds, or sooner once ``batch_bytes`` are waiting, and
keeps each command's chunks in order. ``finish`` flushes a command's remainder before
its result is reported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from shipyard.agent.client import ConnectionFailed, ProtocolError

log = logging.getLogger("shipyard.agent")

FLUSH_INTERVAL = 0.2
BATCH_BYTES = 16 * 1024
MAX_CHUNK_CHARS = 64 * 1024  # one PostHostCommandUpdate carries at most this much
MAX_PENDING_CHARS = 4 * 1024 * 1024  # per command, while the server is unreachable
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

PostUpdate = Callable[[str, str], object]  # (command_id, chunk) -> anything


@dataclass
class _Buffer:
    parts: list[str] = field(default_factory=list)
    size: int = 0
    dropped: int = 0

    def take(self, limit: int) -> str:
        text = "".join(self.parts)
        chunk, rest = text[:limit], text[limit:]
        self.parts = [rest] if rest else []
        self.size = len(rest)
        if self.dropped:
            chunk = f"[{self.dropped} characters of output dropped: server unreachable]\n" + chunk
            self.dropped = 0
        return chunk

    def put_back(self, chunk: str) -> None:
        self.parts.insert(0, chunk)
        self.size += len(chunk)

    def append(self, text: str, cap: int) -> None:
        self.parts.append(text)
        self.size += len(text)
        while self.size > cap and len(self.parts) > 1:
            oldest = self.parts.pop(0)
            self.size -= len(oldest)
            self.dropped += len(oldest)


class OutputStreamer:
    """Streams the output of every running command over one connection."""

    def __init__(
        self,
        post: PostUpdate,
        *,
        interval: float = FLUSH_INTERVAL,
        batch_bytes: int = BATCH_BYTES,
        max_pending: int = MAX_PENDING_CHARS,
    ) -> None:
        self._post = post
        self._interval = interval
        self._batch = batch_bytes
        self._max_pending = max_pending
        self._buffers: dict[str, _Buffer] = {}
        self._sending: str | None = None
        self._finishing: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="output-streamer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is buffered (within ``timeout``) and end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def open(self, command_id: str) -> Callable[[str], None]:
        """A writer for ``command_id``'s output; call ``finish`` when the command ends.

        The flusher is not woken here but by the first output: most lifecycle events
        (DownloadBundle, Install, an event without scripts) write none, and waking a
        thread twice per event cost the agent more than the rest of the event."""
        with self._cond:
            self._buffers.setdefault(command_id, _Buffer())

        def write(text: str) -> None:
            if not text:
                return
            with self._cond:
                buffer = self._buffers.get(command_id)
                if buffer is None:
                    return  # finished already: nothing may follow the result
                first = buffer.size == 0
                buffer.append(text, self._max_pending)
                # The idle flusher sleeps without a timeout: the first output starts
                # its interval; a full batch goes at once.
                if first or buffer.size >= self._batch:
                    self._cond.notify_all()

        return write

    def finish(self, command_id: str, timeout: float) -> bool:
        """Wait until the command's output is delivered; False if some was not."""
        with self._cond:
            buffer = self._buffers.get(command_id)
            if buffer is not None and not buffer.dropped and not self._pending(command_id):
                del self._buffers[command_id]  # nothing to send: no need to wake anyone
                return True
            self._finishing.add(command_id)
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: not self._pending(command_id) or not self._thread.is_alive(), timeout
            )
            self._finishing.discard(command_id)
            buffer = self._buffers.pop(command_id, None)
        undelivered = buffer.size if buffer is not None else 0
        if undelivered:
            log.warning(
                "command %s: %d characters of output not delivered", command_id, undelivered
            )
        return undelivered == 0

    def _pending(self, command_id: str) -> bool:
        buffer = self._buffers.get(command_id)
        return self._sending == command_id or (buffer is not None and buffer.size > 0)

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                if not self._due():
                    self._cond.wait(self._interval if self._buffers else None)
                work = [cid for cid, b in self._buffers.items() if b.size or b.dropped]
                if not work and self._stopping:
                    return
            for command_id in work:
                if not self._send_one(command_id):
                    failures += 1
                    delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                    with self._cond:
                        if self._stopping:
                            self._drop_all()
                            return
                        self._cond.wait(delay)
                    break
                failures = 0

    def _due(self) -> bool:
        """Whether to send now rather than let more output gather."""
        return (
            self._stopping
            or any(self._pending(cid) for cid in self._finishing)
            or any(b.size >= self._batch for b in self._buffers.values())
        )

    def _send_one(self, command_id: str) -> bool:
        """Post one chunk of ``command_id``'s output; False when the server is unreachable."""
        with self._cond:
            buffer = self._buffers.get(command_id)
            if buffer is None:
                return True
            chunk = buffer.take(MAX_CHUNK_CHARS)
            self._sending = command_id
        delivered = True
        try:
            self._post(command_id, chunk)
        except ConnectionFailed as exc:
            log.warning("streaming output: %s", exc)
            delivered = False
        except ProtocolError as exc:
            # The server refused this chunk (e.g. the command is over): retrying cannot help.
            log.warning("command %s: output chunk refused: %s", command_id, exc)
        except Exception:
            log.exception("command %s: output chunk lost", command_id)  # keep streaming others
        with self._cond:
            self._sending = None
            if not delivered and command_id in self._buffers:
                self._buffers[command_id].put_back(chunk)
            self._cond.notify_all()
        return delivered

    def _drop_all(self) -> None:
        for command_id, buffer in self._buffers.items():
            if buffer.size:
                log.warning("command %s: %d characters of output lost", command_id, buffer.size)
            buffer.parts, buffer.size = [], 0
        self._cond.notify_all()


__all__ = ["OutputStreamer"]
