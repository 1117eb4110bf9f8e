"""Target groups: CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
DescribeTargetGroupAttributes, ModifyTargetGroupAttributes, DeleteTargetGroup.

Targets are HTTP servers addressed by IP (``ip``; ``instance`` is taken too, its ids
being addresses as well). Health checks run from the load balancer's HAProxy once a
listener forwards to the group; their seconds, and the deregistration delay's, last
``minute_seconds / 60`` real seconds each (1 in production).
"""

from __future__ import annotations

import re
from typing import Any

from shipyard.containers.elbv2 import topology
from shipyard.containers.elbv2.call import Doc, ElbCall, created_before, existing, selected
from shipyard.containers.elbv2.names import check_name, invalid, not_found, target_group_arn
from shipyard.errors import ApiError
from shipyard.server.query_protocol import QueryParams
from shipyard.store import elbv2 as store

DELAY = "deregistration_delay.timeout_seconds"
DEFAULT_DELAY = 300
_MATCHER = re.compile(r"\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*")
# No "$" (HAProxy would expand it as an environment variable), spaces, quotes or "#".
_PATH = re.compile(r"/[A-Za-z0-9_\-./~@:+&=?%]{0,1023}")

# (member, low, high, default) of the health check's numbers
_NUMBERS = (
    ("HealthCheckIntervalSeconds", 5, 300, 30),
    ("HealthCheckTimeoutSeconds", 2, 120, 5),
    ("HealthyThresholdCount", 2, 10, 5),
    ("UnhealthyThresholdCount", 2, 10, 2),
)


def create_target_group(call: ElbCall) -> Doc:
    p = call.params
    name = check_name("Target group", p.required("Name"))
    protocol = p.text("Protocol", "HTTP")
    if protocol != "HTTP":
        raise ApiError("UnsupportedProtocol", f"Protocol {protocol!r} is not supported: use HTTP")
    target_type = p.text("TargetType", "instance")
    if target_type not in ("ip", "instance"):
        raise invalid(f"TargetType {target_type!r} is not supported: use ip or instance")
    settings: Doc = {
        "TargetGroupName": name,
        "Protocol": protocol,
        "Port": p.number("Port", 1, 65535) or 80,
        "VpcId": p.text("VpcId", "vpc-shipyard"),
        "TargetType": target_type,
        **_health_settings(p, None),
    }
    with call.changing(f"targetgroup/{name}") as conn:
        duplicate = ApiError(
            "DuplicateTargetGroupName",
            f"A target group with the name {name!r} already exists with other settings",
        )
        before = created_before(conn, store.TARGET_GROUPS, name, settings, duplicate)
        if before is not None:
            return {"TargetGroups": [render(conn, before)]}
        arn = target_group_arn(call.region, name)
        doc = {**settings, "Attributes": {DELAY: str(DEFAULT_DELAY)}}
        store.insert(conn, store.TARGET_GROUPS, arn, doc, name=name)
        return {"TargetGroups": [render(conn, {"Arn": arn, **doc})]}


def modify_target_group(call: ElbCall) -> Doc:
    arn = call.params.required("TargetGroupArn")
    with call.changing(arn) as conn:
        doc = _existing(conn, arn)
        doc.update(_health_settings(call.params, doc))
        store.update(conn, store.TARGET_GROUPS, arn, doc)
        lb_arn = topology.balancer_of_group(conn, arn)
        if lb_arn is not None:
            call.balancers.apply(conn, lb_arn)  # checks are structure: HAProxy reloads
        return {"TargetGroups": [render(conn, doc)]}


def describe_target_groups(call: ElbCall) -> Doc:
    p = call.params
    arns, names, lb_arn = (
        p.strings("TargetGroupArns"),
        p.strings("Names"),
        p.text("LoadBalancerArn"),
    )
    if sum(bool(x) for x in (arns, names, lb_arn)) > 1:
        raise invalid("Specify one of LoadBalancerArn, TargetGroupArns and Names")
    with call.reading() as conn:
        if lb_arn:
            if store.get(conn, store.LOAD_BALANCERS, lb_arn) is None:
                raise not_found("LoadBalancer", lb_arn)
            found = topology.groups_used(conn, lb_arn)
        else:
            found = store.find(conn, store.TARGET_GROUPS)
        found = selected(found, arns, "Arn", "TargetGroup")
        found = selected(found, names, "TargetGroupName", "TargetGroup")
        return call.page([render(conn, doc) for doc in found], "TargetGroups")


def describe_attributes(call: ElbCall) -> Doc:
    arn = call.params.required("TargetGroupArn")
    with call.reading() as conn:
        doc = _existing(conn, arn)
    return {"Attributes": _attributes(doc)}


def modify_attributes(call: ElbCall) -> Doc:
    arn = call.params.required("TargetGroupArn")
    items = call.params.structs("Attributes") or []
    with call.changing(arn) as conn:
        doc = _existing(conn, arn)
        for item in items:
            key, value = item.required("Key"), item.required("Value")
            if key != DELAY:
                raise invalid(f"Attribute {key[:80]!r} is not supported (only {DELAY})")
            if not value.isdigit() or not 0 <= int(value) <= 3600:
                raise invalid(f"{DELAY} must be between 0 and 3600 seconds")
            doc["Attributes"][key] = str(int(value))
        store.update(conn, store.TARGET_GROUPS, arn, doc)
    return {"Attributes": _attributes(doc)}


def delete_target_group(call: ElbCall) -> Doc:
    arn = call.params.required("TargetGroupArn")
    with call.changing(arn) as conn:
        if store.get(conn, store.TARGET_GROUPS, arn) is None:
            return {}
        user = topology.balancer_of_group(conn, arn)
        if user is not None:
            raise ApiError(
                "ResourceInUse", f"Target group {arn} is currently in use by a listener or a rule"
            )
        store.remove_group_targets(conn, arn)
        store.delete(conn, store.TARGET_GROUPS, arn)
    return {}


def deregistration_delay(doc: Doc) -> int:
    return int(doc["Attributes"][DELAY])


def render(conn: Any, doc: Doc) -> Doc:
    out = {"TargetGroupArn": doc["Arn"]}
    out.update({key: value for key, value in doc.items() if key not in ("Arn", "Attributes")})
    lb_arn = topology.balancer_of_group(conn, doc["Arn"])
    out["LoadBalancerArns"] = [lb_arn] if lb_arn else []
    out["ProtocolVersion"] = "HTTP1"
    out["IpAddressType"] = "ipv4"
    return out


def _existing(conn: Any, arn: str) -> Doc:
    return existing(conn, store.TARGET_GROUPS, arn, "TargetGroup")


def _attributes(doc: Doc) -> list[Doc]:
    return [{"Key": key, "Value": value} for key, value in doc["Attributes"].items()]


def _health_settings(p: QueryParams, before: Doc | None) -> Doc:
    """The health check members, from the request or else ``before`` or the defaults."""

    def pick(key: str, value: Any, default: Any) -> Any:
        if value is not None:
            return value
        return before[key] if before else default

    out: Doc = {}
    for key, low, high, default in _NUMBERS:
        out[key] = pick(key, p.number(key, low, high), default)
    interval = out["HealthCheckIntervalSeconds"]
    if out["HealthCheckTimeoutSeconds"] >= interval and not p.has("HealthCheckTimeoutSeconds"):
        out["HealthCheckTimeoutSeconds"] = interval - 1  # a default that would not fit
    if out["HealthCheckTimeoutSeconds"] >= interval:
        raise invalid("HealthCheckTimeoutSeconds must be smaller than HealthCheckIntervalSeconds")
    protocol = pick("HealthCheckProtocol", p.text("HealthCheckProtocol"), "HTTP")
    if protocol != "HTTP":
        raise ApiError(
            "UnsupportedProtocol", f"Health check protocol {protocol!r} is not supported"
        )
    port = pick("HealthCheckPort", p.text("HealthCheckPort"), "traffic-port")
    if port != "traffic-port" and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise invalid(f"HealthCheckPort must be traffic-port or 1-65535, not {port[:20]!r}")
    path = pick("HealthCheckPath", p.text("HealthCheckPath"), "/")
    if not _PATH.fullmatch(path):
        raise invalid(f"Invalid HealthCheckPath {path[:100]!r}")
    matcher = p.struct("Matcher")
    code = pick("Matcher", {"HttpCode": matcher.text("HttpCode")} if matcher else None, None)
    code = (code or {}).get("HttpCode") or "200"
    if not _MATCHER.fullmatch(code) or not all(
        200 <= int(c) <= 499 for c in re.findall(r"\d{3}", code)
    ):
        raise invalid(
            f"Invalid Matcher.HttpCode {code[:40]!r}: codes 200-499, e.g. 200,202 or 200-299"
        )
    enabled = p.flag("HealthCheckEnabled")
    return {
        **out,
        "HealthCheckProtocol": protocol,
        "HealthCheckPort": port,
        "HealthCheckEnabled": pick("HealthCheckEnabled", enabled, True),
        "HealthCheckPath": path,
        "Matcher": {"HttpCode": code},
    }
