"""Listener and rule actions and rule conditions: read from a request, checked, stored,
and rendered back as the API shows them.

Shipyard's load balancers forward (to one target group, or to several by weight);
other action types are refused with ``InvalidLoadBalancerAction``. A stored action is
``{"Type": "forward", "TargetGroups": [[arn, weight], ...], "Single": bool}``.
Conditions: ``path-pattern`` and ``host-header``, stored ``{"Field", "Values"}``.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from shipyard.containers.elbv2 import topology
from shipyard.containers.elbv2.names import invalid, not_found
from shipyard.errors import ApiError
from shipyard.server.query_protocol import QueryParams
from shipyard.store import elbv2 as store

Doc = dict[str, Any]
MAX_FORWARD_GROUPS = 5
MAX_WEIGHT = 999
# Characters AWS allows in path patterns and host names, less quotes (they would end
# HAProxy's quoted pattern); haproxy_config turns * and ? into regex.
_PATH = re.compile(r"[A-Za-z0-9_\-.$/~@:+&*?]{1,128}")
_HOST = re.compile(r"[A-Za-z0-9\-.*?]{1,128}")


def read_actions(conn: Connection, items: list[QueryParams] | None, lb_arn: str) -> list[Doc]:
    if not items:
        raise invalid("At least one action must be given")
    if len(items) > 1:
        raise ApiError("TooManyActions", "Shipyard's load balancers take one forward action")
    return [_read_forward(conn, items[0], lb_arn)]


def _read_forward(conn: Connection, action: QueryParams, lb_arn: str) -> Doc:
    kind = action.required("Type")
    if kind != "forward":
        raise ApiError(
            "InvalidLoadBalancerAction",
            f"Action type {kind[:40]!r} is not supported: Shipyard's load balancers forward",
        )
    single = action.text("TargetGroupArn")
    config = action.struct("ForwardConfig")
    groups: list[list[Any]] = []
    for item in (config.structs("TargetGroups") if config else None) or []:
        weight = item.number("Weight", 0, MAX_WEIGHT)
        groups.append([item.required("TargetGroupArn"), 1 if weight is None else weight])
    if single and groups and [arn for arn, _ in groups] != [single]:
        raise invalid(
            "With both TargetGroupArn and ForwardConfig, ForwardConfig may hold only that group"
        )
    if not groups:
        if not single:
            raise invalid("A forward action needs TargetGroupArn or ForwardConfig.TargetGroups")
        groups = [[single, 1]]
    arns = [arn for arn, _ in groups]
    if len(set(arns)) != len(arns):
        raise invalid("A target group may appear only once in a forward action")
    if len(arns) > MAX_FORWARD_GROUPS:
        raise invalid(f"A forward action may name at most {MAX_FORWARD_GROUPS} target groups")
    if not any(weight for _, weight in groups):
        raise invalid("At least one target group of a forward action needs a weight above 0")
    for arn in arns:
        _check_group(conn, arn, lb_arn)
    return {"Type": "forward", "TargetGroups": groups, "Single": bool(single) or len(groups) == 1}


def _check_group(conn: Connection, arn: str, lb_arn: str) -> None:
    if store.get(conn, store.TARGET_GROUPS, arn) is None:
        raise not_found("TargetGroup", arn)
    owner = topology.balancer_of_group(conn, arn)
    if owner is not None and owner != lb_arn:
        raise ApiError(
            "TargetGroupAssociationLimit",
            f"The target group {arn} is already used by load balancer {owner}; "
            "a target group can be associated with one load balancer only",
        )


def read_conditions(items: list[QueryParams] | None) -> list[Doc]:
    if not items:
        raise invalid("A rule needs at least one condition")
    conditions = []
    for item in items:
        field = item.required("Field")
        if field not in ("path-pattern", "host-header"):
            raise invalid(
                f"Condition field {field[:40]!r} is not supported: "
                "Shipyard's rules match path-pattern and host-header"
            )
        config = item.struct("PathPatternConfig" if field == "path-pattern" else "HostHeaderConfig")
        values = (config.strings("Values") if config else None) or item.strings("Values") or []
        if not 1 <= len(values) <= 5:
            raise invalid(f"A {field} condition takes 1 to 5 values")
        pattern = _PATH if field == "path-pattern" else _HOST
        for value in values:
            if not pattern.fullmatch(value):
                raise invalid(f"Invalid {field} value {value[:130]!r}")
        conditions.append({"Field": field, "Values": values})
    return conditions


def render_action(action: Doc) -> Doc:
    groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in action["TargetGroups"]]
    out: Doc = {"Type": "forward"}
    if action.get("Single") and len(groups) == 1:
        out["TargetGroupArn"] = groups[0]["TargetGroupArn"]
    out["ForwardConfig"] = {
        "TargetGroups": groups,
        "TargetGroupStickinessConfig": {"Enabled": False},
    }
    return out


def render_condition(condition: Doc) -> Doc:
    key = "PathPatternConfig" if condition["Field"] == "path-pattern" else "HostHeaderConfig"
    return {
        "Field": condition["Field"],
        "Values": condition["Values"],
        key: {"Values": condition["Values"]},
    }
