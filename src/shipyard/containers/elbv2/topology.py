"""What a load balancer is in HAProxy's terms, read from the store (haproxy_config.Topology).

Stored actions are ``{"Type": "forward", "TargetGroups": [[arn, weight], ...],
"Single": bool}`` (actions.py); a target group's backend is ``tg_<id>``, a listener's
frontend ``l_<id>``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.containers.elbv2.haproxy_config import (
    Condition,
    Frontend,
    Group,
    HealthCheck,
    Route,
    Server,
    Topology,
    server_name,
)
from shipyard.containers.elbv2.names import last_part
from shipyard.store import elbv2 as store

Doc = dict[str, Any]
MIN_CHECK_TIMEOUT = 1.0  # seconds


def backend(tg_arn: str) -> str:
    return "tg_" + last_part(tg_arn)


def read(conn: Connection, lb_arn: str, bind_address: str, time_scale: float) -> Topology:
    frontends, used = [], []
    for listener in store.find(conn, store.LISTENERS, lb_arn=lb_arn):
        rules = sorted(
            store.find(conn, store.RULES, listener_arn=listener["Arn"]),
            key=lambda rule: int(rule["Priority"]),
        )
        routes = [_route(rule["Conditions"], rule["Actions"]) for rule in rules]
        routes.append(_route([], listener["DefaultActions"]))
        for route in routes:
            used += [name for name, _ in route.forwards if name not in used]
        frontends.append(
            Frontend("l_" + last_part(listener["Arn"]), listener["Port"], tuple(routes))
        )
    groups, servers = [], {}
    for doc in groups_used(conn, lb_arn):
        name = backend(doc["Arn"])
        groups.append(Group(name, health_check(doc, time_scale)))
        servers[name] = tuple(
            Server(server_name(t.address, t.port), t.address, t.port, t.state == store.DRAINING)
            for t in store.targets(conn, doc["Arn"])
        )
    return Topology(bind_address, tuple(frontends), tuple(groups), servers)


def forwarded_groups(action: Doc) -> list[str]:
    return [arn for arn, _ in action.get("TargetGroups", [])]


def groups_used(conn: Connection, lb_arn: str) -> list[Doc]:
    """The target groups the load balancer's listeners and rules forward to."""
    arns: list[str] = []
    for listener in store.find(conn, store.LISTENERS, lb_arn=lb_arn):
        actions = list(listener["DefaultActions"])
        for rule in store.find(conn, store.RULES, listener_arn=listener["Arn"]):
            actions += rule["Actions"]
        for action in actions:
            arns += [arn for arn in forwarded_groups(action) if arn not in arns]
    docs = [store.get(conn, store.TARGET_GROUPS, arn) for arn in sorted(arns)]
    return [doc for doc in docs if doc is not None]


def balancer_of_group(conn: Connection, tg_arn: str) -> str | None:
    """The load balancer whose listeners forward to the group (at most one)."""
    for lb in store.find(conn, store.LOAD_BALANCERS):
        if any(doc["Arn"] == tg_arn for doc in groups_used(conn, lb["Arn"])):
            return str(lb["Arn"])
    return None


def health_check(doc: Doc, time_scale: float) -> HealthCheck:
    port = doc["HealthCheckPort"]
    return HealthCheck(
        enabled=bool(doc["HealthCheckEnabled"]),
        path=doc["HealthCheckPath"],
        port=None if port == "traffic-port" else int(port),
        interval=doc["HealthCheckIntervalSeconds"] * time_scale,
        # Not below a second however short the time scale: a loaded machine must not
        # fail its targets' checks because a rehearsal shrank the clock.
        timeout=max(MIN_CHECK_TIMEOUT, doc["HealthCheckTimeoutSeconds"] * time_scale),
        healthy=doc["HealthyThresholdCount"],
        unhealthy=doc["UnhealthyThresholdCount"],
        codes=matcher_codes(doc["Matcher"]["HttpCode"]),
    )


def matcher_codes(text: str) -> tuple[int, ...]:
    """``"200"``, ``"200,202"`` or ``"200-299"`` as the codes it names."""
    codes: list[int] = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        codes += range(int(low), int(high or low) + 1)
    return tuple(codes)


def _route(conditions: list[Doc], actions: list[Doc]) -> Route:
    forward = next(action for action in actions if action["Type"] == "forward")
    return Route(
        tuple(Condition(c["Field"], tuple(c["Values"])) for c in conditions),
        tuple((backend(arn), int(weight)) for arn, weight in forward["TargetGroups"]),
    )
