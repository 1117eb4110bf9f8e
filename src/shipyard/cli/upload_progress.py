"""A progress bar for ``push`` uploads, on stderr and only on a terminal.

``ProgressReader`` wraps the bundle's file object: boto3 reads the body through it, and
each read moves the bar (redrawn at most ``REDRAW_SECONDS`` apart, on one line).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import BinaryIO, TextIO

REDRAW_SECONDS = 0.1
BAR_WIDTH = 30


def size_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def bar_line(done: int, total: int, label: str) -> str:
    share = done / total if total else 1.0
    filled = int(BAR_WIDTH * share)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"{label} [{bar}] {share:4.0%}  {size_text(done)} / {size_text(total)}"


class ProgressReader:
    """A read-only file that draws how much of it has been read."""

    def __init__(
        self,
        file: BinaryIO,
        total: int,
        out: TextIO,
        label: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.file = file
        self.total = total
        self.out = out
        self.label = label
        self.clock = clock
        self.drawn_at = float("-inf")

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self._draw(force=not data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def _draw(self, *, force: bool) -> None:
        now = self.clock()
        if not force and now - self.drawn_at < REDRAW_SECONDS:
            return
        self.drawn_at = now
        self.out.write("\r" + bar_line(min(self.file.tell(), self.total), self.total, self.label))
        self.out.flush()

    def finish(self) -> None:
        self.out.write("\r" + bar_line(self.total, self.total, self.label) + "\n")
        self.out.flush()
