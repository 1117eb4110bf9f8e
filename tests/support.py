"""Helpers every test tier shares: waiting for a condition, signed calls to the
CodeDeploy API and the Shipyard extensions, and what the server knows of an agent."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPResponse
from pathlib import Path
from typing import Any, TypeVar

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import select

from shipyard.config import AgentConfig
from shipyard.store import schema
from tests.conftest import LiveServer

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None],
    what: str | Callable[[], str],
    timeout: float = 30.0,
    every: float = 0.05,
) -> T:
    """Poll ``check`` every ``every`` seconds until it returns something truthy, and
    return that; after ``timeout`` seconds fail naming ``what`` (when a callable, it is
    asked then, so the message can show the state the wait got stuck in)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout:g} s waiting for {told}")
        time.sleep(every)


def _send(
    server: LiveServer,
    operation: str,
    body: Any,
    cafile: Path | None,
    *,
    target_prefix: str = "CodeDeploy_20141006",
    service: str = "codedeploy",
    keys: tuple[str, str] | None = None,
) -> HTTPResponse:
    """POST ``body`` as JSON 1.1 to ``operation``, SigV4-signed by botocore's signer (not
    Shipyard's own, so the server's check is tested against an independent
    implementation), with the admin key unless ``keys`` (key id, secret) are given.
    Error answers raise HTTPError."""
    data = json.dumps(body).encode()
    url = server.url + "/"
    headers = {
        "X-Amz-Target": f"{target_prefix}.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    signed = AWSRequest(method="POST", url=url, data=data, headers=headers)
    credentials = Credentials(*(keys or (server.access_key_id, server.secret_access_key)))
    SigV4Auth(credentials, service, server.region).add_auth(signed)
    request = urllib.request.Request(url, data=data, headers=dict(signed.headers), method="POST")
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    response: HTTPResponse = urllib.request.urlopen(request, timeout=30, context=context)
    return response


def call_extension(
    server: LiveServer, operation: str, body: dict[str, Any], *, cafile: Path | None = None
) -> dict[str, Any]:
    """A signed call (a Shipyard extension, or any CodeDeploy operation) and its answer;
    an error answer raises urllib.error.HTTPError. Over HTTPS, ``cafile`` is the only
    certificate authority trusted."""
    with _send(server, operation, body, cafile) as response:
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
    return answer


def raw_call(
    server: LiveServer,
    operation: str,
    body: Any,
    *,
    target_prefix: str = "CodeDeploy_20141006",
    service: str = "codedeploy",
    keys: tuple[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A signed call with ``body`` sent as is (botocore's parameter validation
    bypassed): the HTTP status and the parsed answer, error answers included."""
    signing = {"target_prefix": target_prefix, "service": service, "keys": keys}
    try:
        with _send(server, operation, body, None, **signing) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def issued_agent_config(server: LiveServer, name: str, home: Path, **overrides: Any) -> AgentConfig:
    """The agent config of registered instance ``name``, with keys issued for it now
    through ShipyardIssueInstanceCredentials."""
    keys = call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    values: dict[str, Any] = {
        "endpoint": server.url,
        "instance_name": name,
        "access_key_id": keys["accessKeyId"],
        "secret_access_key": keys["secretAccessKey"],
        "host_identifier": keys["hostIdentifier"],
        "root_dir": home / "root",
        "log_dir": home / "log",
    }
    return AgentConfig(**{**values, **overrides})


def last_seen(server: LiveServer, name: str) -> float | None:
    """When instance ``name``'s agent last polled, as the server recorded it (None:
    never)."""
    c = schema.instances.c
    with server.services.db.tx() as conn:
        seen = conn.execute(select(c.last_seen).where(c.name == name)).scalar_one()
    return None if seen is None else float(seen)


def instance_updates(server: LiveServer) -> list[str]:
    """UPDATE statements on ``instances`` the server runs from now on (a live list), as
    SQLite itself sees them: a poll's statements go to the driver's cursor directly,
    past SQLAlchemy's events (store/direct.py)."""
    seen: list[str] = []

    def record(statement: str) -> None:
        if statement.lstrip().upper().startswith("UPDATE INSTANCES"):
            seen.append(statement)

    with server.services.db.tx() as conn:  # the server's one SQLite connection
        driver = conn.connection.driver_connection
    driver.set_trace_callback(record)  # type: ignore[union-attr]
    return seen
