"""Requests written by hand on a socket, for the tests that attack the server: signed as
a client would, or with the signature bent (headers left unsigned, another scope), and
bodies announced but never sent."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shipyard import sigv4
from tests.conftest import LiveServer

JSON_TYPE = "application/x-amz-json-1.1"
API = "CodeDeploy_20141006."
AGENT = "CodeDeployCommandService_v20141006."


def amz_now(offset_seconds: float = 0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def host_of(server: LiveServer) -> str:
    return urlsplit(server.url).netloc


def signed(
    server: LiveServer,
    target: str,
    body: bytes,
    *,
    creds: sigv4.Credentials | None = None,
    service: str = "",
    region: str | None = None,
    amz_date: str | None = None,
    unsigned: Iterable[str] = (),
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """Headers of a SigV4-signed JSON request; the headers named in ``unsigned`` are sent
    but left out of SignedHeaders. The signing name is the target's unless given."""
    service = service or ("codedeploy-commands" if target.startswith(AGENT) else "codedeploy")
    creds = creds or sigv4.Credentials(server.access_key_id, server.secret_access_key)
    headers = {"Content-Type": JSON_TYPE, "X-Amz-Target": target, **(extra or {})}
    left_out = {name.lower() for name in unsigned}
    covered = {k: v for k, v in headers.items() if k.lower() not in left_out}
    out = sigv4.sign_headers(
        creds,
        method="POST",
        host=host_of(server),
        path="/",
        body=body,
        headers=covered,
        region=region or server.region,
        service=service,
        amz_date=amz_date or amz_now(),
    )
    out.update((k, v) for k, v in headers.items() if k.lower() in left_out)
    return out


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool | None  # whether the server closed the connection (None: not watched)

    def json(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.body)
        return decoded

    @property
    def error(self) -> str:
        return str(self.json()["__type"])


def connect(server: LiveServer, timeout: float = 10) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def send_head(sock: socket.socket, server: LiveServer, headers: dict[str, str]) -> None:
    lines = ["POST / HTTP/1.1", f"Host: {host_of(server)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def read_answer(sock: socket.socket, *, watch_close: bool = False) -> Answer:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    closed = None
    if watch_close:
        # A close follows the answer at once; a kept-alive connection idles for 5 s first.
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:  # closed with bytes we sent still unread: a reset
            closed = True
        except TimeoutError:
            closed = False
    return Answer(response.status, headers, body, closed)


def post(
    server: LiveServer,
    headers: dict[str, str],
    body: bytes,
    *,
    content_length: int | None = None,
    watch_close: bool = False,
) -> Answer:
    """Send the headers (with ``content_length``, default the body's) and ``body``, which
    may be only the start of what the headers announce, then read the answer."""
    length = len(body) if content_length is None else content_length
    with connect(server) as sock:
        send_head(sock, server, {**headers, "Content-Length": str(length)})
        sock.sendall(body)
        return read_answer(sock, watch_close=watch_close)


def call(server: LiveServer, target: str, body: bytes, **signing: Any) -> Answer:
    """A signed call with ``body`` sent as is."""
    return post(server, signed(server, target, body, **signing), body)


def instance_keys(server: LiveServer, name: str) -> tuple[sigv4.Credentials, str]:
    """Register on-premises instance ``name``; its new keys and its HostIdentifier."""
    from tests.support import call_extension

    arn = f"arn:aws:iam::000000000000:user/{name}"
    server.client().register_on_premises_instance(instanceName=name, iamUserArn=arn)
    keys = call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    creds = sigv4.Credentials(keys["accessKeyId"], keys["secretAccessKey"])
    return creds, str(keys["hostIdentifier"])
