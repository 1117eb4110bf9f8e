"""Changes a running load balancer takes without a reload, through HAProxy's runtime API:
dynamic servers (targets) and the weighted-forward map.

A new target is added in maintenance (HAProxy adds dynamic servers so), its checks
enabled, its health forced down (from drain) and then set ready: it takes traffic only once
``rise`` checks have passed (ELBv2's ``initial`` → ``healthy``). A deregistered target
is set to ``drain`` (no new requests; its requests in flight finish), and deleted once
idle or at the end of the group's deregistration delay.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.containers.elbv2.haproxy_config import HealthCheck, Server, check_keywords
from shipyard.traffic import TrafficError
from shipyard.traffic.haproxy import RuntimeApi


@dataclass(frozen=True)
class ServerStat:
    """One server as ``show stat`` reports it."""

    name: str
    status: str  # UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (going up), MAINT, DRAIN, no check
    check_status: str  # L7OK, L7STS, L4CON, L4TOUT, L7TOUT, INI, ... ("" without checks)
    check_code: str  # the HTTP status of the last check, when it had one
    sessions: int  # current plus queued
    went_down: int  # chkdown: UP→DOWN transitions since the server was added


class BalancerRuntime:
    def __init__(self, api: RuntimeApi) -> None:
        self.api = api

    def stats(self, backend: str) -> dict[str, ServerStat]:
        answer = self.api.run(f"show stat {backend} 4 -1")
        if not answer.startswith("# "):
            raise TrafficError(f"HAProxy could not show backend {backend!r}: {answer.strip()}")
        rows = csv.DictReader(answer[2:].splitlines())
        return {
            row["svname"]: ServerStat(
                name=row["svname"],
                status=row.get("status", ""),
                check_status=(row.get("check_status") or "").lstrip("* "),
                check_code=row.get("check_code") or "",
                sessions=_count(row.get("scur")) + _count(row.get("qcur")),
                went_down=_count(row.get("chkdown")),
            )
            for row in rows
            if row.get("pxname") == backend
        }

    def add(self, backend: str, server: Server, health: HealthCheck) -> None:
        where = f"{backend}/{server.name}"
        line = f"add server {where} {server.address}:{server.port} weight 1"
        self._expect(line + check_keywords(health), "New server registered.")
        commands = []
        if health.enabled:
            # Through drain: forced down while in maintenance, HAProxy would still call
            # the server up when it leaves maintenance.
            commands += [
                f"enable health {where}",
                f"set server {where} state drain",
                f"set server {where} health down",
            ]
        commands.append(f"set server {where} state {'drain' if server.draining else 'ready'}")
        self._quiet(commands)

    def drain(self, backend: str, name: str) -> None:
        self._quiet([f"set server {backend}/{name} state drain"])

    def delete(self, backend: str, name: str) -> bool:
        """Take the server out; False while it still has connections (try again later)."""
        self._quiet([f"set server {backend}/{name} state maint"])
        answer = self.api.run(f"del server {backend}/{name}").strip()
        if answer == "Server deleted.":
            return True
        if "still has connections" in answer:
            return False
        raise TrafficError(f"HAProxy refused to delete {backend}/{name}: {answer}")

    def replace_map(self, map_file: Path, entries: Sequence[tuple[str, str]]) -> None:
        """Swap the map's whole content at once (requests see the old or the new split)."""
        answer = self.api.run(f"prepare map {map_file}").strip()
        version = answer.rpartition(":")[2].strip()
        if not answer.startswith("New version created") or not version.isdigit():
            raise TrafficError(f"HAProxy could not prepare map {map_file}: {answer}")
        adds = [f"add map @{version} {map_file} {key} {value}" for key, value in entries]
        self._quiet([*adds, f"commit map @{version} {map_file}"])  # one connection

    def _expect(self, command: str, expected: str) -> None:
        answer = self.api.run(command).strip()
        if answer != expected:
            raise TrafficError(f"HAProxy refused {command!r}: {answer}")

    def _quiet(self, commands: Sequence[str]) -> None:
        """Commands that answer nothing when they succeed, on one line."""
        answer = self.api.run("; ".join(commands)).strip()
        if answer:
            raise TrafficError(f"HAProxy refused {'; '.join(commands)!r}: {answer}")


def _count(field: str | None) -> int:
    return int(field) if field and field.isdigit() else 0
