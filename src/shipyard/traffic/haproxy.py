"""HAProxy as a traffic router, driven through its runtime API (the admin "stats socket").

Backends and servers are HAProxy's own: ``backend web`` / ``server s1 ...`` in
haproxy.cfg. The socket must be declared with ``level admin``, for example
``stats socket /run/haproxy/admin.sock level admin`` or
``stats socket ipv4@127.0.0.1:9999 level admin``.

Each command goes on its own connection (send one line, read until HAProxy closes): no
session state to get wrong, and a restarted HAProxy is picked up by the next call.
What we read:

- ``show servers state <backend>``: admin state bits, operational state, check state and
  user weight of each server (a table whose columns are named on its ``#`` line);
- ``show stat <backend> 4 -1``: the CSV statistics of the backend's servers, for the
  current (``scur``) and queued (``qcur``) sessions and the last health check's text.

What we change: ``set server <backend>/<server> state ready|drain|maint``,
``... weight <n>`` and, on the way out of maintenance, ``... health down`` (see ``allow``).
"""

from __future__ import annotations

import csv
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.traffic import (
    AdminState,
    RouterConfig,
    ServerState,
    TrafficError,
    check_name,
    check_weight,
    wait_until,
)

log = logging.getLogger("shipyard.traffic.haproxy")

POLL_INTERVAL = 0.05
# srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, resolution and
# hostname maintenance; forced and inherited drain. Not 0x04 (configured maintenance):
# a server declared ``disabled`` starts with 0x01 | 0x04 and keeps 0x04 after it is
# set ready at run time, while it takes traffic.
_MAINT_BITS = 0x01 | 0x02 | 0x20 | 0x40
_DRAIN_BITS = 0x08 | 0x10
_CHECK_ENABLED = 0x04  # srv_check_state bit CHK_ST_ENABLED
_OP_STOPPED = 0  # srv_op_state SRV_ST_STOPPED: the server is DOWN


class RuntimeApi:
    """HAProxy's runtime API at ``unix:/path`` or ``tcp:host:port``; one command a call."""

    def __init__(self, address: str, timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self._family, self._target = parse_address(address)

    def run(self, command: str) -> str:
        """Send one command and return HAProxy's whole answer."""
        chunks: list[bytes] = []
        try:
            with socket.socket(self._family, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self._target)
                sock.sendall(command.encode() + b"\n")
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except TimeoutError:
            raise TrafficError(
                f"the HAProxy runtime API at {self.address} did not answer {command!r} "
                f"within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            raise TrafficError(
                f"cannot reach the HAProxy runtime API at {self.address}: {exc.strerror or exc}"
            ) from None
        return b"".join(chunks).decode("utf-8", "replace")


def parse_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    scheme, _, rest = address.partition(":")
    if scheme == "unix" and rest:
        return socket.AF_UNIX, rest
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if host and port.isdigit():
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            return family, (host, int(port))
    raise TrafficError(
        f"invalid HAProxy runtime API address {address!r}: "
        "expected 'unix:/path/to/admin.sock' or 'tcp:host:port'"
    )


@dataclass(frozen=True)
class _Observed:
    state: ServerState
    check: str  # the last health check in words, "" when there is none


class HAProxyRouter:
    def __init__(
        self,
        api: RuntimeApi,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._api = api
        self._clock = clock  # for allow's deadline; block takes its clock per call
        self._sleep = sleep
        self._poll_interval = poll_interval

    @classmethod
    def from_config(cls, config: RouterConfig) -> HAProxyRouter:
        return cls(RuntimeApi(config.address, config.timeout))

    def block(
        self,
        backend: str,
        server: str,
        *,
        drain_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if self._observe(backend, server).state.admin == "maint":
            return
        self._set_state(backend, server, "drain")
        drained = wait_until(
            lambda: self._observe(backend, server).state.sessions == 0,
            timeout=drain_timeout,
            clock=clock,
            sleep=self._sleep,
            interval=self._poll_interval,
        )
        if not drained:
            log.warning(
                "%s/%s still had sessions after %g s of draining; taking it out anyway",
                backend,
                server,
                drain_timeout,
            )
        self._set_state(backend, server, "maint")

    def allow(self, backend: str, server: str, *, health_timeout: float) -> None:
        before = self._observe(backend, server).state
        if before.admin == "maint" and before.healthy is not None:
            # Leaving maintenance, HAProxy restores the health the server had before it
            # (checks were paused) and calls it UP at once, even if the app behind it is
            # gone. Step through drain (no new traffic) and force the health down, so that
            # only a fresh passing check brings the server up.
            self._set_state(backend, server, "drain")
            self._command(f"set server {backend}/{server} health down")
        self._set_state(backend, server, "ready")
        if before.healthy is None:
            return
        seen: list[_Observed] = []

        def is_up() -> bool:
            seen.append(self._observe(backend, server))
            return seen[-1].state.healthy is True

        if not wait_until(
            is_up,
            timeout=health_timeout,
            clock=self._clock,
            sleep=self._sleep,
            interval=self._poll_interval,
        ):
            check = seen[-1].check if seen else ""
            raise TrafficError(
                f"server {server!r} in backend {backend!r} is still down {health_timeout:g} s "
                f"after it was allowed traffic (last health check: {check or 'none yet'})"
            )

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        check_weight(weight)
        self._observe(backend, server)  # a clear error for an unknown backend or server
        self._command(f"set server {backend}/{server} weight {weight}")

    def describe(self, backend: str) -> list[ServerState]:
        return [observed.state for observed in self._observe_backend(backend)]

    # -- internals -----------------------------------------------------------------------

    def _set_state(self, backend: str, server: str, state: AdminState) -> None:
        self._command(f"set server {backend}/{server} state {state}")

    def _command(self, command: str) -> None:
        """Run a command that answers nothing when it succeeds."""
        answer = self._api.run(command).strip()
        if answer:
            raise TrafficError(f"HAProxy refused {command!r}: {answer}")

    def _observe(self, backend: str, server: str) -> _Observed:
        check_name("server", server)
        for observed in self._observe_backend(backend):
            if observed.state.server == server:
                return observed
        raise TrafficError(f"unknown server {server!r} in backend {backend!r}")

    def _observe_backend(self, backend: str) -> list[_Observed]:
        check_name("backend", backend)
        rows = self._servers_state(backend)
        stats = self._stats(backend)
        return [_observed(backend, row, stats.get(row["srv_name"], {})) for row in rows]

    def _servers_state(self, backend: str) -> list[dict[str, str]]:
        answer = self._api.run(f"show servers state {backend}")
        lines = [line for line in answer.splitlines() if line.strip()]
        header = next((line for line in lines if line.startswith("# ")), None)
        if header is None:
            reason = answer.strip() or "empty answer"
            if reason == "Can't find backend.":
                raise TrafficError(f"unknown backend {backend!r}")
            raise TrafficError(f"HAProxy could not show backend {backend!r}: {reason}")
        names = header[2:].split()
        start = lines.index(header) + 1
        return [dict(zip(names, line.split(), strict=False)) for line in lines[start:]]

    def _stats(self, backend: str) -> dict[str, dict[str, str]]:
        answer = self._api.run(f"show stat {backend} 4 -1")
        if not answer.startswith("# "):
            reason = answer.strip() or "empty answer"
            raise TrafficError(f"HAProxy could not show statistics of {backend!r}: {reason}")
        reader = csv.DictReader(answer[2:].splitlines())
        return {row["svname"]: row for row in reader if row.get("pxname") == backend}


def _observed(backend: str, row: dict[str, str], stat: dict[str, str]) -> _Observed:
    try:
        admin_bits = int(row["srv_admin_state"])
        checked = int(row["srv_check_state"]) & _CHECK_ENABLED
        up = int(row["srv_op_state"]) != _OP_STOPPED
        weight = int(row["srv_uweight"])
    except (KeyError, ValueError) as exc:
        raise TrafficError(f"unexpected 'show servers state' line from HAProxy: {row}") from exc
    admin: AdminState = "ready"
    if admin_bits & _MAINT_BITS:
        admin = "maint"
    elif admin_bits & _DRAIN_BITS:
        admin = "drain"
    check = ": ".join(part for part in (stat.get("check_desc"), stat.get("last_chk")) if part)
    return _Observed(
        state=ServerState(
            backend=backend,
            server=row["srv_name"],
            admin=admin,
            healthy=up if checked else None,
            sessions=_count(stat.get("scur")) + _count(stat.get("qcur")),
            weight=weight,
        ),
        check=check,
    )


def _count(field: str | None) -> int:
    return int(field) if field and field.isdigit() else 0
