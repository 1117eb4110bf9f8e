"""AWS::ElasticLoadBalancingV2::LoadBalancer, TargetGroup, Listener and ListenerRule
through the ``elbv2`` client (the embedded ELBv2 on HAProxy, or AWS). CloudFormation's
property names are the API's; numbers that came through parameters arrive as text."""

from __future__ import annotations

from typing import Any

from shipyard.stacks.providers.clients import Clients, calling
from shipyard.stacks.providers.protocol import Current, Outcome, Request

GONE = ("LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound", "RuleNotFound")
MAX_NAME = 32  # load balancer and target group names
_LB_KEYS = ("Scheme", "Type", "IpAddressType", "Subnets", "SecurityGroups", "Tags")
_TG_KEYS = (
    "Protocol",
    "ProtocolVersion",
    "VpcId",
    "TargetType",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckPort",
    "HealthCheckProtocol",
    "Matcher",
    "Tags",
)
_TG_NUMBERS = (
    "Port",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
)
_TG_MODIFIABLE = (
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckPort",
    "HealthCheckProtocol",
    "Matcher",
    *_TG_NUMBERS[1:],
)


def short_name(props: dict[str, Any], request: Request) -> str:
    """The given Name, or the generated one cut to ELBv2's 32 characters (its unique
    suffix kept)."""
    given = props.get("Name")
    if given:
        return str(given)
    name = request.name
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 13] + name[-13:]


def _numbers(props: dict[str, Any], keys: tuple[str, ...]) -> dict[str, int]:
    return {key: int(props[key]) for key in keys if key in props}


class LoadBalancerProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = short_name(props, request)
        elbv2 = self.clients.client("elbv2")
        arguments = {k: props[k] for k in _LB_KEYS if k in props}
        found = calling(
            f"CreateLoadBalancer {name}",
            lambda: elbv2.create_load_balancer(Name=name, **arguments),
        )["LoadBalancers"][0]
        arn = found["LoadBalancerArn"]
        return Outcome(
            arn,
            {
                "DNSName": found.get("DNSName", ""),
                "LoadBalancerName": name,
                "LoadBalancerFullName": arn.split(":loadbalancer/", 1)[-1],
                "CanonicalHostedZoneID": found.get("CanonicalHostedZoneId", ""),
                "SecurityGroups": found.get("SecurityGroups", []),
            },
        )

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        return Outcome(current.physical_id, current.attributes)  # Subnets, Tags: not applied

    def delete(self, current: Current) -> None:
        elbv2 = self.clients.client("elbv2")
        calling(
            "DeleteLoadBalancer",
            lambda: elbv2.delete_load_balancer(LoadBalancerArn=current.physical_id),
            GONE,
        )


class TargetGroupProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        name = short_name(props, request)
        elbv2 = self.clients.client("elbv2")
        arguments = {k: props[k] for k in _TG_KEYS if k in props} | _numbers(props, _TG_NUMBERS)
        found = calling(
            f"CreateTargetGroup {name}",
            lambda: elbv2.create_target_group(Name=name, **arguments),
        )["TargetGroups"][0]
        arn = found["TargetGroupArn"]
        self._targets(arn, [], props.get("Targets") or [])
        self._attributes(arn, props.get("TargetGroupAttributes"))
        return Outcome(
            arn,
            {
                "TargetGroupArn": arn,
                "TargetGroupName": name,
                "TargetGroupFullName": arn.split(":", 5)[-1],
                "LoadBalancerArns": found.get("LoadBalancerArns", []),
            },
        )

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        props, old = request.properties, current.properties
        arn = current.physical_id
        elbv2 = self.clients.client("elbv2")
        changed = {k: props[k] for k in _TG_MODIFIABLE if k in props and props[k] != old.get(k)}
        if changed:
            settings = {k: int(v) if k in _TG_NUMBERS else v for k, v in changed.items()}
            calling(
                "ModifyTargetGroup",
                lambda: elbv2.modify_target_group(TargetGroupArn=arn, **settings),
            )
        self._targets(arn, old.get("Targets") or [], props.get("Targets") or [])
        if props.get("TargetGroupAttributes") != old.get("TargetGroupAttributes"):
            self._attributes(arn, props.get("TargetGroupAttributes"))
        return Outcome(arn, current.attributes)

    def _targets(self, arn: str, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
        def shaped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [
                {"Id": str(t["Id"]), **({"Port": int(t["Port"])} if "Port" in t else {})}
                for t in items
            ]

        before, after = shaped(old), shaped(new)
        elbv2 = self.clients.client("elbv2")
        gone = [t for t in before if t not in after]
        added = [t for t in after if t not in before]
        if gone:
            calling(
                "DeregisterTargets",
                lambda: elbv2.deregister_targets(TargetGroupArn=arn, Targets=gone),
            )
        if added:
            calling(
                "RegisterTargets",
                lambda: elbv2.register_targets(TargetGroupArn=arn, Targets=added),
            )

    def _attributes(self, arn: str, attributes: Any) -> None:
        if not attributes:
            return
        elbv2 = self.clients.client("elbv2")
        pairs = [{"Key": str(a["Key"]), "Value": str(a["Value"])} for a in attributes]
        calling(
            "ModifyTargetGroupAttributes",
            lambda: elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=pairs),
        )

    def delete(self, current: Current) -> None:
        elbv2 = self.clients.client("elbv2")
        calling(
            "DeleteTargetGroup",
            lambda: elbv2.delete_target_group(TargetGroupArn=current.physical_id),
            GONE,
        )


def _listener(props: dict[str, Any]) -> dict[str, Any]:
    """What CreateListener and ModifyListener both take from the properties."""
    return {
        "Protocol": props.get("Protocol", "HTTP"),
        "Port": int(props["Port"]),
        "DefaultActions": props.get("DefaultActions") or [],
    }


def _rule(props: dict[str, Any]) -> dict[str, Any]:
    return {"Conditions": props.get("Conditions") or [], "Actions": props.get("Actions") or []}


class ListenerProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        elbv2 = self.clients.client("elbv2")
        found = calling(
            "CreateListener",
            lambda: elbv2.create_listener(
                LoadBalancerArn=props["LoadBalancerArn"], **_listener(props)
            ),
        )["Listeners"][0]
        return Outcome(found["ListenerArn"], {"ListenerArn": found["ListenerArn"]})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        props = request.properties
        elbv2 = self.clients.client("elbv2")
        calling(
            "ModifyListener",
            lambda: elbv2.modify_listener(ListenerArn=current.physical_id, **_listener(props)),
        )
        return Outcome(current.physical_id, current.attributes)

    def delete(self, current: Current) -> None:
        elbv2 = self.clients.client("elbv2")
        calling(
            "DeleteListener",
            lambda: elbv2.delete_listener(ListenerArn=current.physical_id),
            GONE,
        )


class ListenerRuleProvider:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def create(self, request: Request) -> Outcome:
        props = request.properties
        elbv2 = self.clients.client("elbv2")
        found = calling(
            "CreateRule",
            lambda: elbv2.create_rule(
                ListenerArn=props["ListenerArn"], Priority=int(props["Priority"]), **_rule(props)
            ),
        )["Rules"][0]
        return Outcome(found["RuleArn"], {"RuleArn": found["RuleArn"]})

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        props, arn = request.properties, current.physical_id
        elbv2 = self.clients.client("elbv2")
        if int(props["Priority"]) != int(current.properties.get("Priority", 0)):
            priorities = [{"RuleArn": arn, "Priority": int(props["Priority"])}]
            calling(
                "SetRulePriorities", lambda: elbv2.set_rule_priorities(RulePriorities=priorities)
            )
        calling(
            "ModifyRule",
            lambda: elbv2.modify_rule(RuleArn=arn, **_rule(props)),
        )
        return Outcome(arn, current.attributes)

    def delete(self, current: Current) -> None:
        elbv2 = self.clients.client("elbv2")
        calling("DeleteRule", lambda: elbv2.delete_rule(RuleArn=current.physical_id), GONE)
