"""Finding 5 of issue 10: idle and slowloris connections were held forever, and enough of
them locked every client out. Servers here have a short header deadline and a small
connection cap, so that the attacks take a handful of sockets."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from shipyard.server.connections import RESERVED_FILES, connection_cap
from tests.conftest import LiveServer, start_live_server
from tests.server.wire import API, connect, read_answer, send_head, signed

HEADER_TIMEOUT = 0.5
CAP = 6


def _server(tmp_path: Path, header_timeout: float) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path / "server", header_timeout=header_timeout, max_connections=CAP
    )


@pytest.fixture
def quick_deadline(tmp_path: Path) -> Iterator[LiveServer]:
    yield from _server(tmp_path, HEADER_TIMEOUT)


@pytest.fixture
def long_deadline(tmp_path: Path) -> Iterator[LiveServer]:
    """Idle connections would stay for a minute: only the cap can make room."""
    yield from _server(tmp_path, 60)


def _seconds_until_closed(sock: Any, trickle: bytes = b"", limit: float = 10) -> float:
    """Time until the server closes ``sock``, sending ``trickle`` every 0.1 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.1)
    while time.monotonic() - start < limit:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(1) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
    pytest.fail(f"the server kept the connection open for {limit} s")


def test_a_connection_that_never_sends_headers_is_closed(quick_deadline: LiveServer) -> None:
    with connect(quick_deadline) as sock:
        assert HEADER_TIMEOUT * 0.8 <= _seconds_until_closed(sock) < 5


def test_slowloris_headers_trickling_in_are_cut_off(quick_deadline: LiveServer) -> None:
    with connect(quick_deadline) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        assert _seconds_until_closed(sock, trickle=b"X-Slow: y\r\n") < 5


def test_a_refused_upload_cannot_hold_its_connection_by_trickling_its_body(
    quick_deadline: LiveServer,
) -> None:
    """The bundle store reads what is left of a refused body (so that its client can
    read the answer), but not for longer than the header deadline."""
    with connect(quick_deadline) as sock:
        sock.sendall(b"PUT /bundles/app.zip HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
        assert _seconds_until_closed(sock, trickle=b"x") < 5


def test_each_request_on_a_kept_alive_connection_has_its_own_deadline(
    quick_deadline: LiveServer,
) -> None:
    with connect(quick_deadline) as sock:
        send_head(sock, quick_deadline, {"Content-Length": "0"})  # a first, whole request
        assert read_answer(sock).status == 403
        sock.sendall(b"POST / HTTP/1.1\r\n")  # a second one that stalls
        # Well before uvicorn's 5 s keep-alive timeout would close it.
        assert _seconds_until_closed(sock) < 3


def test_idle_connections_beyond_the_cap_do_not_lock_out_clients(
    long_deadline: LiveServer,
) -> None:
    codedeploy = long_deadline.client()
    with ExitStack() as stack:
        idle = [stack.enter_context(connect(long_deadline)) for _ in range(3 * CAP)]
        # Each new connection displaced the one idle longest: the signed call gets in.
        codedeploy.create_application(applicationName="reachable")
        assert codedeploy.list_applications()["applications"] == ["reachable"]
        still_open = 0
        for sock in idle:
            sock.settimeout(0.2)
            try:
                still_open += sock.recv(1) != b""
            except TimeoutError:
                still_open += 1
        assert still_open < CAP


def test_when_every_connection_is_busy_a_new_one_is_closed(long_deadline: LiveServer) -> None:
    headers = signed(long_deadline, API + "ListApplications", b"{}")
    busy = {**headers, "Content-Length": "2", "Expect": "100-continue"}
    with ExitStack() as stack:
        for _ in range(CAP):  # requests in progress: the server is waiting for their bodies
            sock = stack.enter_context(connect(long_deadline))
            send_head(sock, long_deadline, busy)
            assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
        latecomer = stack.enter_context(connect(long_deadline))
        assert _seconds_until_closed(latecomer) < 5


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.fail(f"this machine's hard open-file limit ({hard}) leaves nothing to raise")
    script = (
        "from shipyard.server.connections import raise_open_file_limit; "
        "print(raise_open_file_limit())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    assert int(done.stdout) == expected


def test_the_connection_cap_leaves_room_for_the_servers_own_files() -> None:
    assert connection_cap(8192, 1024) == 1024 - RESERVED_FILES
    assert connection_cap(100, 1 << 20) == 100
