"""One load balancer as an HAProxy configuration (pure: a ``Topology`` in, text out).

- Each listener is a frontend bound at its port; each target group a backend
  (``balance roundrobin``, a dynamic algorithm, so targets come and go through the
  runtime API as dynamic servers) with HTTP health checks from the group's settings.
- **Weighted forwards.** Every route (a rule's action, or a listener's default action)
  owns a *slot*: a range of 10,000 integers starting at ``slot * 10000``. A request
  draws ``rand(10000)`` plus its route's base, once, from the first route whose
  conditions match (rules by priority, the default last), and ``use_backend`` looks the
  number up in the load balancer's map (``map_int`` with range keys), where each route's
  range is cut among its target groups by weight: ``0:8999 tg_a``, ``9000:9999 tg_b``
  for 90/10. Which groups a route forwards to, and by what weights, is therefore map
  content, changed at run time in one atomic ``prepare map``/``commit map``: shifting
  traffic never reloads HAProxy and never touches a connection. (The alternative, the
  servers of both groups in one backend with scaled weights, ties the split to server
  counts and HAProxy's 0-256 weights, and makes one target group's health checks and
  draining another's business.) The split is a fresh random draw per request: with
  ``n`` requests the observed share is within about ``2*sqrt(p(1-p)/n)`` of the weight.
- What needs a reload (``structure``): listeners, rule conditions, which target groups
  the load balancer uses, and their health check settings. Servers are written into the
  configuration only for a reload or a start (``servers``); in between they are
  dynamic, and the server-state file carries their health and drain state across a
  reload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SLOT = 10_000
NO_TARGET = "no_target"


@dataclass(frozen=True)
class HealthCheck:
    enabled: bool
    path: str
    port: int | None  # None: the target's own (traffic) port
    interval: float  # seconds, after the server's time scale
    timeout: float
    healthy: int  # HealthyThresholdCount: passes that make a target healthy
    unhealthy: int  # UnhealthyThresholdCount: failures that make it unhealthy
    codes: tuple[int, ...]  # the Matcher's HTTP codes


@dataclass(frozen=True)
class Group:
    backend: str  # "tg_<id>"
    health: HealthCheck


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    port: int
    draining: bool = False


@dataclass(frozen=True)
class Condition:
    field: str  # "path-pattern" or "host-header"
    values: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    conditions: tuple[Condition, ...]  # all must match; none for a default action
    forwards: tuple[tuple[str, int], ...]  # (backend, weight)


@dataclass(frozen=True)
class Frontend:
    name: str  # "l_<id>"
    port: int
    routes: tuple[Route, ...]  # rules by priority, then the default action


@dataclass(frozen=True)
class Topology:
    bind_address: str
    frontends: tuple[Frontend, ...]
    groups: tuple[Group, ...]
    servers: dict[str, tuple[Server, ...]] = field(default_factory=dict)  # by backend


@dataclass(frozen=True)
class Files:
    admin_socket: Path
    map_file: Path
    state_file: Path


def server_name(address: str, port: int) -> str:
    return f"t-{address}-{port}"


def structure(topology: Topology, files: Files, maxconn: int) -> str:
    """Everything but the servers: when this changes, HAProxy reloads."""
    out = [
        "global",
        f"    stats socket {files.admin_socket} level admin expose-fd listeners",
        f"    server-state-file {files.state_file}",
        f"    maxconn {maxconn}",
        "    hard-stop-after 60s",
        "",
        "defaults",
        "    mode http",
        "    option forwardfor",
        # At a reload the old worker answers the next request on each idle keep-alive
        # connection with "Connection: close" instead of closing it under a client that
        # may be sending on it (hard-stop-after bounds how long it waits).
        "    option idle-close-on-response",
        "    load-server-state-from-file global",
        # No retries and no redispatch: like an ALB, a request that reached a target is
        # never sent twice; zero-loss changes must come from draining, not from retries.
        "    retries 0",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 60s",
        "",
    ]
    slot = 0
    for frontend in topology.frontends:
        out += [f"frontend {frontend.name}", f"    bind {topology.bind_address}:{frontend.port}"]
        for route in frontend.routes:
            out += _route_lines(route, slot)
            slot += 1
        out += [
            f"    use_backend %[var(txn.pick),map_int({files.map_file})]",
            f"    default_backend {NO_TARGET}",
            "",
        ]
    out += [
        f"backend {NO_TARGET}",
        '    http-request return status 503 content-type text/plain string "no target"',
        "",
    ]
    for group in topology.groups:
        out += _backend_lines(group)
    return "\n".join(out) + "\n"


def full(topology: Topology, files: Files, maxconn: int) -> str:
    """The structure with every backend's current servers (for a start or a reload)."""
    text = structure(topology, files, maxconn)
    for group in topology.groups:
        servers = topology.servers.get(group.backend, ())
        lines = "".join(f"    {server_line(s, group.health)}\n" for s in servers)
        anchor = f"backend {group.backend}\n"
        text = text.replace(anchor, anchor + lines, 1)
    return text


def server_line(server: Server, health: HealthCheck) -> str:
    """``server …`` in the configuration; ``add server`` takes the same keywords."""
    line = f"server {server.name} {server.address}:{server.port} weight 1"
    line += check_keywords(health)
    return line + (" disabled" if server.draining else "")


def check_keywords(health: HealthCheck) -> str:
    if not health.enabled:
        return ""
    words = f" check inter {_ms(health.interval)} rise {health.healthy} fall {health.unhealthy}"
    return words + (f" port {health.port}" if health.port else "")


def map_entries(topology: Topology) -> list[tuple[str, str]]:
    """The map's ``lo:hi backend`` entries: each route's slot cut by its weights."""
    entries: list[tuple[str, str]] = []
    slot = 0
    for frontend in topology.frontends:
        for route in frontend.routes:
            entries += _cut(slot * SLOT, route.forwards)
            slot += 1
    return entries


def _cut(base: int, forwards: Sequence[tuple[str, int]]) -> list[tuple[str, str]]:
    total = sum(weight for _, weight in forwards)
    cut, done = [], 0
    for backend, weight in forwards:
        low = done * SLOT // total if total else 0
        done += weight
        high = done * SLOT // total if total else 0
        if high > low:
            cut.append((f"{base + low}:{base + high - 1}", backend))
    return cut


def _route_lines(route: Route, slot: int) -> list[str]:
    acls = [f"r{slot}_{n}" for n in range(len(route.conditions))]
    lines = [
        f"    acl {name} {_fetch(c.field)} {' '.join(_pattern(c.field, v) for v in c.values)}"
        for name, c in zip(acls, route.conditions, strict=True)
    ]
    draw = f"rand({SLOT}),add({slot * SLOT})"
    condition = " ".join(["!{ var(txn.pick) -m found }", *acls])
    lines.append(f"    http-request set-var(txn.pick) {draw} if {condition}")
    return lines


def _fetch(field_name: str) -> str:
    if field_name == "path-pattern":
        return "path -m reg"
    return "req.hdr(host),field(1,:) -m reg -i"


def _pattern(field_name: str, value: str) -> str:
    """An AWS wildcard pattern (``*`` any run, ``?`` one character) as an anchored
    regex in single quotes; names.py allowed only characters that need no escaping
    here but ``.``, ``$`` and ``+``, which become character classes."""
    out = []
    for char in value:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char in ".$+":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "'^" + "".join(out) + "$'"


def _backend_lines(group: Group) -> list[str]:
    lines = [f"backend {group.backend}", "    balance roundrobin"]
    health = group.health
    if health.enabled:
        codes = "|".join(str(code) for code in health.codes)
        lines += [
            f"    option httpchk GET {health.path}",
            f"    http-check expect rstatus ^({codes})$",
            f"    timeout check {_ms(health.timeout)}",
        ]
    return [*lines, ""]


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
