"""Steady HTTP load that remembers every request, for counting dropped requests.

The generator runs in a process of its own (``python -m tests.e2e.http_load URL OUT``)
so it never competes for the GIL with a server under test in the caller's process:
asyncio, ``connections`` keep-alive HTTP/1.1 connections, at most ``rate`` requests a
second, bounded by ``seconds`` and ``max_requests``, stopped early by SIGTERM. Each
request is written down with its wall-clock start, latency and outcome, so a run can
be cut into phases afterwards (``between``) and summed up (``summarize``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Request:
    started: float  # wall clock
    seconds: float  # until the whole answer was read
    status: int  # HTTP status; 0 when no answer came (refused, reset, timed out)
    body: str  # the answer's body, or what went wrong when status is 0

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300


@dataclass
class Load:
    """A running load generator process; ``stop`` ends it and returns every request."""

    process: subprocess.Popen[str]
    out: Path
    requests: list[Request] = field(default_factory=list)

    def sent(self) -> int:
        """Requests answered (or failed) so far; the record is flushed every 50 ms."""
        return self.out.read_bytes().count(b"\n")

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Return once ``count`` requests are done (AssertionError after ``timeout``)."""
        # Imported here: the generator process imports this module too, and must stay light.
        from tests.support import wait_until

        def reached() -> bool:
            assert self.process.poll() is None, f"the load ended at {self.sent()} requests"
            return self.sent() >= count

        wait_until(reached, lambda: f"{count} requests of load: {self.sent()}", timeout)

    def stop(self, timeout: float = 20.0) -> list[Request]:
        """End the load now (requests in flight are finished) and read the record."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 60.0) -> list[Request]:
        """Wait for the load to reach its bounds, then read the record."""
        try:
            _, errors = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise AssertionError("the load generator did not stop") from None
        if self.process.returncode != 0:
            raise AssertionError(f"the load generator failed: {errors}")
        self.requests = read_requests(self.out)
        return self.requests


def start_load(
    url: str,
    out: Path,
    *,
    connections: int = 16,
    rate: float = 0.0,
    seconds: float = 120.0,
    max_requests: int = 1_000_000,
) -> Load:
    """Start steady GETs of ``url`` on ``connections`` keep-alive connections, at most
    ``rate`` a second (0: as fast as answers come), for at most ``seconds`` and
    ``max_requests``; returns once the first answer is in."""
    command = [sys.executable, "-m", "tests.e2e.http_load", url, str(out)]
    command += [f"--connections={connections}", f"--rate={rate}", f"--seconds={seconds}"]
    command += [f"--max-requests={max_requests}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 15)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "started":
        process.kill()
        _, errors = process.communicate()
        raise AssertionError(f"the load generator did not start: {line!r} {errors}")
    return Load(process, out)


def read_requests(path: Path) -> list[Request]:
    requests = []
    for line in path.read_text().splitlines():
        started, seconds, status, body = line.split("\t", 3)
        requests.append(Request(float(started), float(seconds), int(status), body))
    return requests


@dataclass(frozen=True)
class Summary:
    sent: int
    failures: int
    p50: float  # seconds
    p99: float
    bodies: dict[str, int]  # what answered, e.g. {"v2 web-1": 812, ...}


def summarize(requests: Sequence[Request]) -> Summary:
    latencies = sorted(r.seconds for r in requests)

    def percentile(p: float) -> float:  # nearest rank
        return latencies[max(0, math.ceil(p * len(latencies)) - 1)] if latencies else 0.0

    bodies: dict[str, int] = {}
    for request in requests:
        key = request.body if not request.failed else f"{request.status} {request.body}"
        bodies[key] = bodies.get(key, 0) + 1
    failures = sum(r.failed for r in requests)
    return Summary(len(requests), failures, percentile(0.50), percentile(0.99), bodies)


def between(requests: Sequence[Request], start: float, end: float) -> list[Request]:
    """The requests started in [start, end) (wall clock)."""
    return [r for r in requests if start <= r.started < end]


# ---- the load generator process ----------------------------------------------------------


class _Pace:
    """Hands out request slots: at most ``rate`` a second and ``limit`` in all."""

    def __init__(self, rate: float, limit: int, deadline: float) -> None:
        self.rate, self.limit, self.deadline = rate, limit, deadline
        self.issued = 0
        self.start = time.monotonic()
        self.stopped = False

    async def next(self) -> bool:
        if self.stopped or self.issued >= self.limit or time.monotonic() >= self.deadline:
            return False
        self.issued += 1
        if self.rate > 0:
            delay = self.start + self.issued / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        return not self.stopped


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, str, bool]:
    """(status, body, whether the connection stays open) of one HTTP/1.1 answer."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    version, status, *_ = status_line.split(" ")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = version == "HTTP/1.1" and headers.get("connection") != "close"
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        body, keep = await reader.read(), False
    return int(status), body.decode(errors="replace").strip(), keep


async def _connection(host: str, port: int, pace: _Pace, record: TextIO) -> None:
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: shipyard-load\r\n\r\n"
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while await pace.next():
        started, clock = time.time(), time.perf_counter()
        try:
            if stream is None:
                stream = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            reader, writer = stream
            writer.write(request.encode())
            status, body, keep = await asyncio.wait_for(_read_answer(reader), 10)
        except (
            OSError,
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ) as exc:
            status, body, keep = 0, f"{type(exc).__name__}: {exc}", False
        body = body.replace("\n", " ").replace("\t", " ")
        record.write(f"{started:.6f}\t{time.perf_counter() - clock:.6f}\t{status}\t{body}\n")
        if not keep and stream is not None:
            stream[1].close()
            stream = None
    if stream is not None:
        stream[1].close()


async def _generate(args: argparse.Namespace, record: TextIO) -> None:
    host_port = args.url.removeprefix("http://").split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    pace = _Pace(args.rate, args.max_requests, time.monotonic() + args.seconds)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: setattr(pace, "stopped", True))
    workers = [_connection(host, int(port), pace, record) for _ in range(args.connections)]
    tasks = [asyncio.ensure_future(w) for w in workers]
    while record.tell() == 0 and not all(t.done() for t in tasks):
        await asyncio.sleep(0.005)
    print("started", flush=True)
    while not all(t.done() for t in tasks):  # the parent counts what is flushed
        record.flush()
        await asyncio.wait(tasks, timeout=0.05)
    await asyncio.gather(*tasks)


def _load_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.http_load")
    parser.add_argument("url")
    parser.add_argument("out", type=Path)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with args.out.open("w") as record:
        asyncio.run(_generate(args, record))
    return 0


if __name__ == "__main__":
    raise SystemExit(_load_main(sys.argv[1:]))
