"""An answer's head goes out with its body's first write (server/connections.py), and a
streamed answer whose body comes later still gets its head at the end of the turn."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.server.connections import HeadWithBody


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_head_and_body_written_in_one_turn_leave_as_one_write() -> None:
    async def answer() -> list[bytes]:
        real = RecordingTransport()
        held = HeadWithBody(real, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        held.write(b"{}")
        await asyncio.sleep(0)  # the turn ends: nothing more may come out
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(answer()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


def test_a_head_whose_body_comes_later_is_sent_at_the_end_of_the_turn() -> None:
    async def answer() -> tuple[list[bytes], list[bytes]]:
        real = RecordingTransport()
        held = HeadWithBody(real, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        assert real.writes == []  # held within the turn
        await asyncio.sleep(0)
        before_body = list(real.writes)
        held.write(b"5\r\nfirst\r\n")
        held.write(b"0\r\n\r\n")
        return before_body, real.writes

    before_body, writes = asyncio.run(answer())
    assert before_body == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    assert writes[1:] == [b"5\r\nfirst\r\n", b"0\r\n\r\n"]  # later chunks go straight on


def test_closing_sends_a_held_head_first() -> None:
    async def answer() -> RecordingTransport:
        real = RecordingTransport()
        held = HeadWithBody(real, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        held.close()
        assert held.is_closing()
        await asyncio.sleep(0)
        return real

    real = asyncio.run(answer())
    assert real.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    assert real.closed
