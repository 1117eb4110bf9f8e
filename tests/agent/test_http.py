"""The agent's small HTTP/1.1 client against real sockets.

The server here is a raw TCP server in a thread, so each test writes exactly the bytes
it wants on the wire (framing, connection handling) instead of what ``http.server``
would choose.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard.agent.http import (
    BadResponse,
    CertificateError,
    Connection,
    ConnectionClosed,
    tls_context,
)
from tests.support import wait_until


@dataclass
class Request:
    head: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}


# Answers one request: gets the request and the client socket, writes the answer,
# returns False to close the connection afterwards.
Answer = Callable[[Request, socket.socket], bool]


@dataclass
class RawServer:
    port: int
    requests: list[Request] = field(default_factory=list)
    connections: int = 0


def _read_request(conn: socket.socket) -> tuple[str, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return "", b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    length = 0
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return text, body


@contextmanager
def raw_server(answer: Answer, *, tls: tuple[str, str] | None = None) -> Iterator[RawServer]:
    listener = socket.create_server(("127.0.0.1", 0))
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        listener = context.wrap_socket(listener, server_side=True)
    state = RawServer(port=listener.getsockname()[1])
    lock = threading.Lock()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a client that went away
            while True:
                head, body = _read_request(conn)
                if not head:
                    return
                request = Request(head, body)
                with lock:
                    state.requests.append(request)
                if not answer(request, conn):
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except ssl.SSLError:
                continue  # a client that did not trust our certificate
            except OSError:
                return  # the listener was shut down
            state.connections += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        # Closing a listener does not wake accept() on Linux; shutdown does.
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)


def reply(head: str, body: bytes = b"", keep: bool = True) -> Answer:
    def answer(_request: Request, conn: socket.socket) -> bool:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return keep

    return answer


def connect(server: RawServer, read_timeout: float = 10.0) -> Connection:
    return Connection("127.0.0.1", server.port, read_timeout=read_timeout)


def test_content_length_answers_reuse_one_connection() -> None:
    answer = reply("HTTP/1.1 201 Created\nContent-Length: 5\nX-Thing: A\nx-thing: B\n", b"hello")
    with raw_server(answer) as server:
        conn = connect(server)
        first = conn.request("POST", "/op?x=1", {"Content-Type": "text/plain"}, b"payload")
        assert (first.status, first.reason, first.will_close) == (201, "Created", False)
        assert first.headers == {"content-length": "5", "x-thing": "A, B"}
        assert first.read() == b"hello"
        assert first.read() == b""
        second = conn.request("GET", "/again")
        assert second.read(2) + second.read(10) == b"hello"
        conn.close()
    assert server.connections == 1
    post, get = server.requests
    assert post.head.startswith("POST /op?x=1 HTTP/1.1\r\n")
    assert post.headers["host"] == f"127.0.0.1:{server.port}"
    assert post.headers["content-length"] == "7"
    assert post.body == b"payload"
    assert "content-length" not in get.headers  # a GET without a body says nothing


def test_chunked_bodies_are_decoded_whole_or_streamed() -> None:
    chunked = (
        b"4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    answer = reply("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", chunked)
    with raw_server(answer) as server:
        conn = connect(server)
        assert conn.request("GET", "/").read() == b"Wikipedia in \r\n\r\nchunks."
        streamed = conn.request("GET", "/")
        pieces = list(iter(lambda: streamed.read(5), b""))
        conn.close()
    assert b"".join(pieces) == b"Wikipedia in \r\n\r\nchunks."
    assert max(len(p) for p in pieces) <= 5
    assert server.connections == 1  # the trailers were consumed: the connection lived on


def test_connection_close_ends_the_connection_after_the_body() -> None:
    answer = reply("HTTP/1.1 200 OK\nContent-Length: 2\nConnection: close\n", b"ok", keep=False)
    with raw_server(answer) as server:
        conn = connect(server)
        response = conn.request("GET", "/")
        assert response.will_close
        assert conn.is_open
        assert response.read() == b"ok"
        assert not conn.is_open
        assert conn.request("GET", "/").read() == b"ok"  # a new connection, opened on demand
        conn.close()
    assert server.connections == 2


def test_http10_bodies_run_to_the_end_of_the_connection() -> None:
    answer = reply("HTTP/1.0 200 OK\nServer: old\n", b"all of it", keep=False)
    with raw_server(answer) as server:
        conn = connect(server)
        response = conn.request("GET", "/")
        assert response.will_close
        assert response.read() == b"all of it"
        assert not conn.is_open


def test_http10_keep_alive_with_a_length_keeps_the_connection() -> None:
    answer = reply("HTTP/1.0 200 OK\nConnection: Keep-Alive\nContent-Length: 1\n", b"1")
    with raw_server(answer) as server:
        conn = connect(server)
        response = conn.request("GET", "/")
        assert not response.will_close
        assert response.read() == b"1"
        assert conn.is_open
        conn.close()


def test_a_keep_alive_connection_the_server_closed_is_connection_closed() -> None:
    # The server answers as if keeping the connection, then drops it: the next request
    # on it gets no answer at all, which callers may safely resend.
    answer = reply("HTTP/1.1 200 OK\nContent-Length: 0\n", keep=False)
    with raw_server(answer) as server:
        conn = connect(server)
        assert conn.request("POST", "/", body=b"{}").read() == b""
        assert conn.is_open and conn.answered == 1
        with pytest.raises(ConnectionClosed):
            conn.request("POST", "/", body=b"{}")
        assert not conn.is_open
        assert conn.request("POST", "/", body=b"{}").status == 200  # resent on a new one
        conn.close()
    assert server.connections == 2
    assert len(server.requests) == 2  # the dropped request never reached a handler


def test_an_unread_body_is_not_mistaken_for_the_next_answer() -> None:
    answer = reply("HTTP/1.1 200 OK\nContent-Length: 6\n", b"abcdef")
    with raw_server(answer) as server:
        conn = connect(server)
        assert conn.request("GET", "/").read(3) == b"abc"
        assert conn.request("GET", "/").read() == b"abcdef"
        conn.close()
    assert server.connections == 2


HEAD_LINES = [
    "HTTP/1.1 200 Fine",
    "X-A: 1",
    "x-a: 2",
    "X-Folded: one",
    "\t two",
    "Content-Length: 2",
]


def send_in_pieces(pieces: list[bytes]) -> Answer:
    def answer(_request: Request, conn: socket.socket) -> bool:
        for piece in pieces:
            conn.sendall(piece)
            time.sleep(0.05)  # lets the client read each piece on its own
        return True

    return answer


@pytest.mark.parametrize(
    "pieces",
    [
        ["\r\n".join(HEAD_LINES).encode() + b"\r\n\r\nok"],  # the whole head in one read
        ["\n".join(HEAD_LINES).encode() + b"\n\nok"],  # bare line feeds
        [
            "\r\n".join(HEAD_LINES[:3]).encode(),
            b"\r\n" + "\r\n".join(HEAD_LINES[3:]).encode() + b"\r\n\r\nok",
        ],
    ],
    ids=["one-read", "bare-lf", "split"],
)
def test_a_head_reads_the_same_however_it_arrives(pieces: list[bytes]) -> None:
    with raw_server(send_in_pieces(pieces)) as server:
        conn = connect(server)
        response = conn.request("GET", "/")
        assert (response.status, response.reason) == (200, "Fine")
        assert response.headers == {"x-a": "1, 2", "x-folded": "one two", "content-length": "2"}
        assert response.read() == b"ok"
        assert conn.is_open and conn.answered == 1
        conn.close()


def test_informational_answers_are_skipped_and_204_has_no_body() -> None:
    answer = reply("HTTP/1.1 100 Continue\n\nHTTP/1.1 204 No Content\n")
    with raw_server(answer) as server:
        conn = connect(server)
        response = conn.request("DELETE", "/")
        assert response.status == 204
        assert response.read() == b""
        assert conn.is_open and conn.answered == 1
        conn.close()


@pytest.mark.parametrize(
    ("head", "body", "problem"),
    [
        ("HTTP/1.1 200 OK\nContent-Length: 10\n", b"short", "before the end of the response"),
        ("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b"zz\r\n", "chunk size"),
        ("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b"-5\r\nabc\r\n", "chunk size"),
        ("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", b"3\r\nabcX", "no line end"),
        ("HTTP/1.1 200 OK\nContent-Length: 1, 2\n", b"", "invalid Content-Length"),
        ("ICY 200 OK\n", b"", "malformed status line"),
        ("HTTP/1.1 200 OK\nno colon here\n", b"", "malformed header line"),
    ],
)
def test_broken_answers_are_bad_responses(head: str, body: bytes, problem: str) -> None:
    with raw_server(reply(head, body, keep=False)) as server:
        conn = connect(server)
        with pytest.raises(BadResponse, match=problem):
            conn.request("GET", "/").read()
        assert not conn.is_open


def test_a_silent_server_hits_the_read_timeout() -> None:
    with raw_server(lambda _request, _conn: True) as server:
        conn = connect(server, read_timeout=0.2)
        with pytest.raises(TimeoutError):
            conn.request("GET", "/")
        assert not conn.is_open


def test_abort_breaks_off_a_request_blocked_in_another_thread() -> None:
    with raw_server(lambda _request, _conn: True) as server:
        conn = connect(server, read_timeout=30.0)
        failures: list[BaseException] = []

        def wait() -> None:
            try:
                conn.request("GET", "/")
            except OSError as exc:
                failures.append(exc)

        waiter = threading.Thread(target=wait)
        waiter.start()
        wait_until(lambda: server.requests, "the request to reach the server", 5)
        conn.abort()
        waiter.join(5)
        assert not waiter.is_alive()
        assert len(failures) == 1


def test_line_breaks_in_headers_or_spaces_in_targets_are_refused() -> None:
    conn = Connection("127.0.0.1", 9)
    with pytest.raises(ValueError, match="line break"):
        conn.request("GET", "/", {"X-Evil": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="spaces or control"):
        conn.request("GET", "/a b")


def test_tls_verifies_the_server_against_the_ca_file(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    answer = reply("HTTP/1.1 200 OK\nContent-Length: 6\n", b"secure")
    with raw_server(answer, tls=(str(cert), str(key))) as server:
        trusting = Connection("127.0.0.1", server.port, tls=tls_context(str(cert)))
        response = trusting.request("GET", "/")
        assert response.read() == b"secure"
        trusting.close()
        untrusting = Connection("127.0.0.1", server.port, tls=tls_context())
        with pytest.raises(CertificateError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.request("GET", "/")
    assert server.requests[0].headers["host"] == f"127.0.0.1:{server.port}"
    with pytest.raises(OSError):
        tls_context(str(tmp_path / "missing.pem"))


LOADED = """
import json, sys
from pathlib import Path
import shipyard.agent.loop
from shipyard.agent import appspec, bundle, install
from shipyard.agent.client import CommandClient, ConnectionFailed
from shipyard.config import AgentConfig
config = AgentConfig(
    endpoint=sys.argv[1], instance_name="i", access_key_id="k", secret_access_key="s",
    host_identifier="h", region="r", root_dir=Path(sys.argv[2]), log_dir=Path(sys.argv[2]),
)
client = CommandClient(config)
try:
    client.poll_host_command()
except ConnectionFailed:
    pass
heavy = ("http.client", "email", "ssl", "urllib.request")
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def loaded_modules(endpoint: str, tmp_path: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", LOADED, endpoint, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_the_agent_loads_no_http_client_email_or_ssl_for_an_http_endpoint(
    tmp_path: Path,
) -> None:
    closed_port = socket.create_server(("127.0.0.1", 0))
    port = closed_port.getsockname()[1]
    closed_port.close()
    assert loaded_modules(f"http://127.0.0.1:{port}", tmp_path) == []
    # The same check sees ssl once the endpoint needs it.
    assert loaded_modules(f"https://127.0.0.1:{port}", tmp_path) == ["ssl"]
