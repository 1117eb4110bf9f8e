"""A tiny command-service stand-in on 127.0.0.1 that records and verifies requests.

Real HTTP/1.1 with keep-alive (``http.server``), real SigV4 verification with
``shipyard.sigv4``; each test decides the answers with a ``respond`` function.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shipyard import sigv4
from shipyard.agent.client import TARGET_PREFIX
from shipyard.config import AgentConfig

SECRET = "test-secret-key"
ACCESS_KEY = "AKSITESTKEY000000000"
HOST_ARN = "arn:aws:iam::000000000000:user/web-1"


@dataclass
class Recorded:
    operation: str
    body: dict[str, Any]
    headers: dict[str, str]
    client_port: int
    signature_ok: bool
    scope: str


# (operation, body) -> (HTTP status, JSON object or raw bytes)
Respond = Callable[[str, dict[str, Any]], tuple[int, dict[str, Any] | bytes]]


@dataclass
class RecordingServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    respond: Respond = lambda _op, _body: (200, {})
    # When set, the server closes each connection after answering, without saying so.
    drop_connections: bool = False

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    def bodies(self, operation: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.operation == operation]


def _handler(state: RecordingServer, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            auth = sigv4.parse_authorization(headers.get("authorization", ""))
            ok = auth.access_key_id == ACCESS_KEY and sigv4.verify(
                auth,
                SECRET,
                method="POST",
                path=self.path,
                query=[],
                headers=headers,
                payload_hash=sigv4.sha256_hex(raw),
                amz_date=headers.get("x-amz-date", ""),
            )
            operation = headers.get("x-amz-target", "").removeprefix(TARGET_PREFIX)
            body = json.loads(raw or b"{}")
            with lock:
                state.requests.append(
                    Recorded(operation, body, headers, self.client_address[1], ok, auth.scope)
                )
            status, answer = state.respond(operation, body)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if state.drop_connections:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def recording_server(
    respond: Respond | None = None, *, tls: tuple[str, str] | None = None
) -> Iterator[RecordingServer]:
    """Serve on an ephemeral loopback port; ``tls`` is ``(certfile, keyfile)``."""
    state = RecordingServer(url="")
    if respond is not None:
        state.respond = respond
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, threading.Lock()))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def agent_config(endpoint: str, tmp_path: Path, **overrides: Any) -> AgentConfig:
    """An agent config signing with the keys this server accepts."""
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "instance_name": "web-1",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "host_identifier": HOST_ARN,
        "region": "eu-west-3",
        "root_dir": tmp_path / "root",
        "log_dir": tmp_path / "logs",
        "poll_seconds": 1.0,
    }
    values.update(overrides)
    return AgentConfig(**values)
