"""RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the same three as plain
functions for the ECS seam (seam.py).

Registering adds a server to the group's backend at run time (no reload); it takes
requests once its checks pass. Deregistering drains it: no new requests at once, and
it is removed when idle or after the group's deregistration delay (balancers.sweep).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from shipyard.containers.elbv2 import topology
from shipyard.containers.elbv2.balancers import LoadBalancers
from shipyard.containers.elbv2.call import Doc, ElbCall, existing
from shipyard.containers.elbv2.group_ops import deregistration_delay
from shipyard.containers.elbv2.health import TargetHealth
from shipyard.containers.elbv2.names import not_found
from shipyard.containers.targets import Target, TargetState
from shipyard.errors import ApiError
from shipyard.store import elbv2 as store

MAX_TARGETS = 1000


def register(
    balancers: LoadBalancers, conn: Connection, tg_arn: str, targets: Sequence[Target]
) -> None:
    """Under ``balancers.lock``, in the caller's transaction."""
    if store.get(conn, store.TARGET_GROUPS, tg_arn) is None:
        raise not_found("TargetGroup", tg_arn)
    if len(store.targets(conn, tg_arn)) + len(targets) > MAX_TARGETS:
        raise ApiError("TooManyTargets", f"A target group holds at most {MAX_TARGETS} targets")
    now = balancers.clock()
    for target in targets:
        store.register(conn, tg_arn, target.address, target.port, now)
    _apply(balancers, conn, tg_arn)


def deregister(
    balancers: LoadBalancers, conn: Connection, tg_arn: str, targets: Sequence[Target]
) -> None:
    """Under ``balancers.lock``, in the caller's transaction."""
    group = store.get(conn, store.TARGET_GROUPS, tg_arn)
    if group is None:
        raise not_found("TargetGroup", tg_arn)
    known = {(row.address, row.port) for row in store.targets(conn, tg_arn)}
    missing = [t for t in targets if (t.address, t.port) not in known]
    if missing:
        listed = ", ".join(f"'{t.address}:{t.port}'" for t in missing)
        raise ApiError("InvalidTarget", f"The following targets are not registered: {listed}")
    now = balancers.clock()
    until = now + deregistration_delay(group) * balancers.settings.time_scale
    for target in targets:
        store.start_draining(conn, tg_arn, target.address, target.port, now, until)
    _apply(balancers, conn, tg_arn)
    balancers.draining_started()


def health(balancers: LoadBalancers, tg_arn: str) -> dict[Target, TargetHealth]:
    with balancers.db.tx() as conn:
        if store.get(conn, store.TARGET_GROUPS, tg_arn) is None:
            raise not_found("TargetGroup", tg_arn)
        found = balancers.health(conn, tg_arn)
    return {Target(address, port): state for (address, port), state in found.items()}


def _apply(balancers: LoadBalancers, conn: Connection, tg_arn: str) -> None:
    lb_arn = topology.balancer_of_group(conn, tg_arn)
    if lb_arn is not None:
        balancers.apply(conn, lb_arn)


# ---- the API ----------------------------------------------------------------------------


def register_targets(call: ElbCall) -> Doc:
    return _change(call, register)


def deregister_targets(call: ElbCall) -> Doc:
    return _change(call, deregister)


def _change(
    call: ElbCall, change: Callable[[LoadBalancers, Connection, str, Sequence[Target]], None]
) -> Doc:
    tg_arn = call.params.required("TargetGroupArn")
    targets = _targets(call, tg_arn, required=True)
    with call.changing(tg_arn) as conn:
        change(call.balancers, conn, tg_arn, targets)
    return {}


def describe_target_health(call: ElbCall) -> Doc:
    tg_arn = call.params.required("TargetGroupArn")
    asked = _targets(call, tg_arn, required=False)
    found = health(call.balancers, tg_arn)
    with call.reading() as conn:
        check_port = existing(conn, store.TARGET_GROUPS, tg_arn, "TargetGroup")["HealthCheckPort"]
    if asked:
        unknown = TargetHealth(
            TargetState.UNUSED,
            "Target.NotRegistered",
            "Target is not registered to the target group",
        )
        found = {target: found.get(target, unknown) for target in asked}
    return {
        "TargetHealthDescriptions": [
            _description(target, state, check_port) for target, state in sorted(found.items())
        ]
    }


def _description(target: Target, state: TargetHealth, check_port: str) -> Doc:
    health: Doc = {"State": state.state.value}
    if state.reason:
        health.update(Reason=state.reason, Description=state.description)
    return {
        "Target": {"Id": target.address, "Port": target.port},
        "HealthCheckPort": str(target.port) if check_port == "traffic-port" else check_port,
        "TargetHealth": health,
    }


def _targets(call: ElbCall, tg_arn: str, *, required: bool) -> list[Target]:
    items = call.params.structs("Targets")
    if not items:
        if required:
            raise ApiError("ValidationError", "Targets must name at least one target")
        return []
    with call.reading() as conn:
        group = store.get(conn, store.TARGET_GROUPS, tg_arn)
    if group is None:
        raise not_found("TargetGroup", tg_arn)
    targets = []
    for item in items:
        address = item.required("Id")
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise ApiError(
                "InvalidTarget", f"Target Id {address[:80]!r} must be an IPv4 address"
            ) from None
        if parsed.version != 4:
            raise ApiError("InvalidTarget", f"Target Id {address!r} must be an IPv4 address")
        port = item.number("Port", 1, 65535) or int(group["Port"])
        targets.append(Target(address, port))
    return targets
