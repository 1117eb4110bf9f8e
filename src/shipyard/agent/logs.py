"""The agent's own log: each line to stderr and to ``<log_dir>/shipyard-agent.log``.

Every lifecycle event logs twice (running, then its result), and through the standard
two handlers each line cost about as much CPU as the rest of a no-op event's local
work: the record was formatted once per handler, each time with its own ``strftime``.
Here one handler formats a record once and writes the line to both streams, the
timestamp text is reused within a second, and the record skips what the format never
shows (the caller's frame, the process id and name).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(message)s"
LOG_FILE = "shipyard-agent.log"


class SecondsCachedFormatter(logging.Formatter):
    """``logging.Formatter`` whose date text (to the second) is made once per second."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:  # races only make two threads compute the same text
            self._text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._text},{int(record.msecs):03d}"  # the default_msec_format


class TeeHandler(logging.Handler):
    """Writes each formatted record to every stream, flushed (a line per record)."""

    def __init__(self, streams: list[TextIO]) -> None:
        super().__init__()
        self.streams = streams

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        for stream in self.streams:
            try:  # one stream failing must not keep the line from the other
                stream.write(line)
                stream.flush()
            except Exception:
                self.handleError(record)

    def close(self) -> None:
        try:
            for stream in self.streams[1:]:  # the first is stderr: not ours to close
                stream.close()
        finally:
            super().close()


def configure_logging(log_dir: Path, *, verbose: bool) -> None:
    """Log to stderr and to ``<log_dir>/shipyard-agent.log`` (stderr alone if the file
    cannot be opened, saying so)."""
    logger = logging.getLogger("shipyard.agent")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    # What LOG_FORMAT never shows (the standard library's documented switches): the
    # caller's file and line (a frame walk per record), the process id and name.
    logging._srcfile = None
    logging.logProcesses = False
    logging.logMultiprocessing = False
    streams: list[TextIO] = [sys.stderr]
    problem = None
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        streams.append(open(log_dir / LOG_FILE, "a", encoding="utf-8"))  # noqa: SIM115 - the handler's
    except OSError as exc:
        problem = exc
    handler = TeeHandler(streams)
    handler.setFormatter(SecondsCachedFormatter(LOG_FORMAT))
    logger.addHandler(handler)
    if problem is not None:
        logger.warning("logging to stderr only: %s", problem)


__all__ = ["LOG_FILE", "LOG_FORMAT", "TeeHandler", "configure_logging"]
