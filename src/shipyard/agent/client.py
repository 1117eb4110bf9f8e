"""A small JSON 1.1 client for the command service agents talk to.

Speaks ``CodeDeployCommandService_v20141006.<Op>`` over :mod:`shipyard.agent.http`, signed
with ``shipyard.sigv4`` (service ``codedeploy-commands``). No botocore, no ``http.client``
(it drags in ``ssl`` and ``email``): the agent stays small.

Errors, so callers can catch broadly or narrowly::

    CommandServiceError        base
    ├── ProtocolError          the server answered with ``{"__type": ..., "message": ...}``
    │                          (or something that is not a valid answer)
    └── ConnectionFailed       the server could not be reached or the exchange broke off

Each thread keeps its own keep-alive connection, so the poller, the output streamer
and each command worker reuse their TCP (and TLS) session across calls.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard import __version__, sigv4
from shipyard.agent.http import Connection, ConnectionClosed, tls_context
from shipyard.config import AgentConfig

if TYPE_CHECKING:
    import ssl

TARGET_PREFIX = "CodeDeployCommandService_v20141006."
SIGNING_SERVICE = "codedeploy-commands"
CONTENT_TYPE = "application/x-amz-json-1.1"
AGENT_VERSION = f"shipyard-{__version__}"
# Sent on each poll (extension member ShipyardAgentVersion); `shipyard instance list` shows it.
REPORTED_VERSION = f"shipyard {__version__} (Python {platform.python_version()})"
CONNECT_TIMEOUT = 10.0
# The server holds a poll up to poll_seconds; allow for that plus a slow network.
READ_TIMEOUT_MARGIN = 10.0
# Servers drop idle keep-alive connections (uvicorn after 5 s). Reconnecting before
# that avoids sending a request into a connection the server is closing.
MAX_IDLE_REUSE = 4.0


class CommandServiceError(Exception):
    """Base of the errors a command service call raises."""


class ProtocolError(CommandServiceError):
    """The server answered with an error (``code`` is the AWS exception name)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class ConnectionFailed(CommandServiceError):
    """The server could not be reached, or the connection broke mid-call."""


@dataclass(frozen=True)
class HostCommand:
    """One lifecycle command handed out by PollHostCommand."""

    command_id: str
    host_identifier: str
    execution_id: str
    command_name: str
    nonce: int = 0
    # Acknowledged by the server already (handed back with a completion, or by a poll
    # that asked for it): run it without PutHostCommandAcknowledgement.
    acknowledged: bool = False
    # Handed out by a poll: such a command is offered again if the answer seems lost,
    # so it may be one this agent has run already (see CommandWorker._handle).
    from_poll: bool = False
    # The deployment specification, when the server sent it along (Shipyard's poll).
    specification: dict[str, Any] | None = None


@dataclass
class _Connection:
    http: Connection
    last_used: float


class CommandClient:
    """Calls the command service as one instance, with that instance's keys."""

    def __init__(self, config: AgentConfig, *, clock: Callable[[], float] = time.time) -> None:
        parts = urlsplit(config.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL: {config.endpoint!r}")
        self._config = config
        self._clock = clock
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._host_header = parts.netloc.rpartition("@")[2]
        self._path = parts.path or "/"
        self._signer = sigv4.PresetSigner(
            sigv4.Credentials(config.access_key_id, config.secret_access_key),
            method="POST",
            host=self._host_header,
            path=self._path,
            headers={
                "Content-Type": CONTENT_TYPE,
                "x-amz-codedeploy-agent-version": AGENT_VERSION,
            },
            varying=["X-Amz-Target"],
            region=config.region,
            service=SIGNING_SERVICE,
        )
        self._date = (-1, "")  # (epoch second, its X-Amz-Date text)
        self._read_timeout = config.poll_seconds + READ_TIMEOUT_MARGIN
        self._ssl_context: ssl.SSLContext | None = None
        if self._https:
            try:
                # ssl is imported here, for https endpoints only.
                self._ssl_context = tls_context(config.ca_file)
            except OSError as exc:  # ssl.SSLError is an OSError too
                raise ValueError(f"cannot load CA file {config.ca_file!r}: {exc}") from None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._shut_down = False

    @property
    def endpoint(self) -> str:
        return self._config.endpoint

    # -- the five operations -------------------------------------------------------------

    def poll_host_command(self) -> HostCommand | None:
        """Long-poll for the next command; None when the server had nothing to hand out."""
        # ShipyardPollSeconds (an extension member) caps how long the server holds the
        # poll, so it always answers before this client's read timeout.
        body = {
            "HostIdentifier": self._config.host_identifier,
            "ShipyardPollSeconds": self._config.poll_seconds,
            # Extensions: the specification comes with the command, and the command
            # comes acknowledged, saving two calls.
            "ShipyardSpecification": True,
            "ShipyardAcknowledge": True,
            "ShipyardAgentVersion": REPORTED_VERSION,
        }
        out = self.call("PollHostCommand", body)
        command = out.get("HostCommand")
        if not command:
            return None
        acknowledged = isinstance(command, dict) and command.get("ShipyardAcknowledged") is True
        handed = _host_command(command, str(command.get("HostIdentifier", "")), acknowledged)
        handed = replace(handed, from_poll=True)
        if isinstance(command, dict) and command.get("ShipyardDeploymentSpecification"):
            spec = _specification_payload(command["ShipyardDeploymentSpecification"])
            handed = replace(handed, specification=spec)
        return handed

    def acknowledge(self, command_id: str, *, is_noop: bool) -> str | None:
        """PutHostCommandAcknowledgement; returns the CommandStatus the server sent back."""
        out = self.call(
            "PutHostCommandAcknowledgement",
            {
                "HostCommandIdentifier": command_id,
                "Diagnostics": _json_diagnostics({"IsCommandNoop": is_noop}),
            },
        )
        return _optional_str(out.get("CommandStatus"))

    def get_specification(self, execution_id: str) -> dict[str, Any]:
        """GetDeploymentSpecification, returning the decoded GenericEnvelope payload."""
        out = self.call(
            "GetDeploymentSpecification",
            {
                "DeploymentExecutionId": execution_id,
                "HostIdentifier": self._config.host_identifier,
                # Extension: plain JSON, not the signed PKCS#7 the stock agent gets.
                "ShipyardSpecification": True,
            },
        )
        return _specification_payload(out)

    def post_update(self, command_id: str, log_chunk: str) -> str | None:
        """PostHostCommandUpdate with a chunk of script output; returns the CommandStatus."""
        out = self.call(
            "PostHostCommandUpdate",
            {
                "HostCommandIdentifier": command_id,
                "HostIdentifier": self._config.host_identifier,  # checked by the server
                "Diagnostics": _json_diagnostics({"log": log_chunk}),
            },
        )
        return _optional_str(out.get("CommandStatus"))

    def complete(
        self,
        command_id: str,
        status: str,
        diagnostics: dict[str, Any],
        *,
        then_next: bool = False,
        noop_events: Collection[str] = (),
    ) -> HostCommand | None:
        """PutHostCommandComplete with ``Succeeded``/``Failed`` and the result payload.

        With ``then_next``, Shipyard's extension: the answer may carry the host's next
        command (returned), so no poll is needed between two lifecycle events; and
        ``noop_events``, the hook events with no scripts in this deployment, which the
        server completes for the agent rather than hand them over."""
        body: dict[str, Any] = {
            "HostCommandIdentifier": command_id,
            "CommandStatus": status,
            "Diagnostics": _json_diagnostics(diagnostics),
        }
        if then_next:
            body["ShipyardNextCommand"] = True
            if noop_events:
                body["ShipyardNoopEvents"] = sorted(noop_events)
        out = self.call("PutHostCommandComplete", body)
        handed = out.get("ShipyardNextCommand")
        if not then_next or not handed:
            return None
        # No HostIdentifier: the command comes back on this host's own completion.
        return _host_command(
            handed, self._config.host_identifier, bool(handed.get("ShipyardAcknowledged"))
        )

    # -- transport -----------------------------------------------------------------------

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One signed JSON 1.1 request; the decoded response object."""
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            status, raw = self._exchange(operation, data)
        except OSError as exc:  # the transport's errors are all OSErrors
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailed(
                f"{operation}: cannot reach {self._config.endpoint}: {reason}"
            ) from None
        return _decode(operation, status, raw)

    def shutdown(self) -> None:
        """Break off calls in flight on any thread and refuse new ones (ConnectionFailed)."""
        with self._lock:
            self._shut_down = True
            for conn in self._open:
                conn.abort()

    def close(self) -> None:
        """Close every connection this client opened."""
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()

    def _exchange(self, operation: str, data: bytes) -> tuple[int, bytes]:
        if self._shut_down:
            raise ConnectionAbortedError("client shut down")
        reused = self._current() is not None
        try:
            return self._send(operation, data)
        except ConnectionClosed:
            # A reused keep-alive connection the server had already closed: the
            # request never reached a handler, so sending it once more is safe.
            if not reused or self._shut_down:
                raise
            return self._send(operation, data)

    def _send(self, operation: str, data: bytes) -> tuple[int, bytes]:
        conn = self._connection()
        headers = self._signer.sign(
            data, self._amz_date(), {"X-Amz-Target": TARGET_PREFIX + operation}
        )
        try:
            response = conn.http.request("POST", self._path, headers, data)
            raw = response.read()
        except BaseException:
            self._drop(conn)
            raise
        conn.last_used = time.monotonic()
        if response.will_close:
            self._drop(conn)
        return response.status, raw

    def _amz_date(self) -> str:
        now = int(self._clock())
        cached = self._date
        if cached[0] != now:
            cached = (now, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
            self._date = cached
        return cached[1]

    def _current(self) -> _Connection | None:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            return None
        # Closed by close(), or idle long enough that the server may be dropping it.
        if not conn.http.is_open or time.monotonic() - conn.last_used > MAX_IDLE_REUSE:
            self._drop(conn)
            return None
        return conn

    def _connection(self) -> _Connection:
        current = self._current()
        if current is not None:
            return current
        http_conn = Connection(
            self._hostname,
            self._port,
            tls=self._ssl_context,
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=self._read_timeout,  # the long poll
        )
        with self._lock:
            if self._shut_down:
                raise ConnectionAbortedError("client shut down")
            self._open.add(http_conn)
        conn = _Connection(http_conn, time.monotonic())
        self._local.conn = conn
        try:
            http_conn.connect()
        except BaseException:
            self._drop(conn)
            raise
        return conn

    def _drop(self, conn: _Connection) -> None:
        conn.http.close()
        with self._lock:
            self._open.discard(conn.http)
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None


def _host_command(command: Any, host: str, acknowledged: bool = False) -> HostCommand:
    try:
        return HostCommand(
            command_id=str(command["HostCommandIdentifier"]),
            host_identifier=host,
            execution_id=str(command["DeploymentExecutionId"]),
            command_name=str(command["CommandName"]),
            nonce=int(command.get("Nonce") or 0),
            acknowledged=acknowledged,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError("InvalidResponse", f"malformed HostCommand: {command!r}") from exc


def _specification_payload(out: Any) -> dict[str, Any]:
    """The decoded GenericEnvelope payload of a GetDeploymentSpecification answer."""
    if not isinstance(out, dict) or out.get("DeploymentSystem") != "CodeDeploy":
        system = out.get("DeploymentSystem") if isinstance(out, dict) else out
        raise ProtocolError("InvalidResponse", f"unsupported DeploymentSystem {system!r}")
    envelope = (out.get("DeploymentSpecification") or {}).get("GenericEnvelope") or {}
    try:
        payload = json.loads(envelope["Payload"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(
            "InvalidResponse", "deployment specification has no JSON payload"
        ) from exc
    if not isinstance(payload, dict):
        raise ProtocolError("InvalidResponse", "deployment specification is not a JSON object")
    return payload


def _json_diagnostics(payload: dict[str, Any]) -> dict[str, str]:
    return {"Format": "JSON", "Payload": json.dumps(payload, separators=(",", ":"))}


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _decode(operation: str, status: int, raw: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(raw) if raw.strip() else {}
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and "__type" in decoded:
        code = str(decoded["__type"]).rpartition("#")[2]
        message = decoded.get("message") or decoded.get("Message") or ""
        raise ProtocolError(code, str(message), status)
    if status != 200:
        snippet = raw[:200].decode(errors="replace").strip()
        name = "ServerException" if status >= 500 else "ClientException"
        raise ProtocolError(name, f"{operation}: HTTP {status} {snippet}".strip(), status)
    if not isinstance(decoded, dict):
        raise ProtocolError(
            "InvalidResponse", f"{operation}: response is not a JSON object", status
        )
    return decoded


__all__ = [
    "CommandClient",
    "CommandServiceError",
    "ConnectionFailed",
    "HostCommand",
    "ProtocolError",
]
