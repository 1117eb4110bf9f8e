"""The ECS appspec (reference codedeploy.md §3.3): one ``AWS::ECS::Service`` resource
naming the replacement's task definition, the container and port the load balancer
sends to, and optionally the platform version, network configuration and capacity
provider strategy of the new task set; hook functions for the five hookable events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidRevision
from shipyard.platforms import appspec_doc

RESOURCE_TYPE = "AWS::ECS::Service"
HOOK_EVENTS = (
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
# A task definition ARN, or family[:revision] (ECS accepts both).
TASK_DEFINITION_RE = re.compile(
    r"(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/)?[A-Za-z0-9_-]{1,255}(:\d+)?"
)
ASSIGN_PUBLIC_IP = ("ENABLED", "DISABLED")
WHERE = "Resources[0].Properties"


@dataclass(frozen=True)
class EcsAppSpec:
    task_definition: str
    container_name: str
    container_port: int
    platform_version: str | None = None
    # As CreateTaskSet takes them (camelCase), None when the appspec gives none.
    network_configuration: dict[str, Any] | None = None
    capacity_provider_strategy: list[dict[str, Any]] | None = None
    hooks: dict[str, str] = field(default_factory=dict)  # event -> hook function name

    def to_doc(self) -> dict[str, Any]:
        return {
            "taskDefinition": self.task_definition,
            "containerName": self.container_name,
            "containerPort": self.container_port,
            "platformVersion": self.platform_version,
            "networkConfiguration": self.network_configuration,
            "capacityProviderStrategy": self.capacity_provider_strategy,
            "hooks": dict(self.hooks),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EcsAppSpec:
        return cls(
            doc["taskDefinition"],
            doc["containerName"],
            int(doc["containerPort"]),
            doc.get("platformVersion"),
            doc.get("networkConfiguration"),
            doc.get("capacityProviderStrategy"),
            dict(doc.get("hooks") or {}),
        )


def parse(text: str) -> EcsAppSpec:
    top = appspec_doc.load(text)
    props = appspec_doc.properties(top, RESOURCE_TYPE)
    get = appspec_doc.get
    task_definition = get(props, "taskdefinition", WHERE)
    if not isinstance(task_definition, str) or not TASK_DEFINITION_RE.fullmatch(task_definition):
        raise InvalidRevision(
            f"{WHERE}.TaskDefinition must be a task definition ARN or family:revision; "
            f"got {task_definition!r}"
        )
    balancer = appspec_doc.mapping(
        get(props, "loadbalancerinfo", WHERE), f"{WHERE}.LoadBalancerInfo"
    )
    where = f"{WHERE}.LoadBalancerInfo"
    container = get(balancer, "containername", where)
    if not isinstance(container, str) or not container.strip():
        raise InvalidRevision(f"{where}.ContainerName must be a container's name")
    port = _port(get(balancer, "containerport", where), f"{where}.ContainerPort")
    version = appspec_doc.find(props, "platformversion")
    if version is not None and (not isinstance(version, str) or not version):
        raise InvalidRevision(f"{WHERE}.PlatformVersion must be a string such as LATEST")
    network = appspec_doc.find(props, "networkconfiguration")
    providers = appspec_doc.find(props, "capacityproviderstrategy")
    return EcsAppSpec(
        task_definition,
        container,
        port,
        version,
        None if network is None else _network(network),
        None if providers is None else _providers(providers),
        appspec_doc.hooks(top, HOOK_EVENTS, "ECS"),
    )


def _port(value: Any, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidRevision(f"{what} must be a port number from 1 to 65535; got {value!r}")
    return value


def _network(value: Any) -> dict[str, Any]:
    where = f"{WHERE}.NetworkConfiguration"
    config = appspec_doc.mapping(value, where)
    vpc = appspec_doc.mapping(
        appspec_doc.get(config, "awsvpcconfiguration", where), f"{where}.AwsvpcConfiguration"
    )
    where = f"{where}.AwsvpcConfiguration"
    subnets = _strings(appspec_doc.get(vpc, "subnets", where), f"{where}.Subnets")
    if not subnets:
        raise InvalidRevision(f"{where}.Subnets must name at least one subnet")
    result: dict[str, Any] = {"subnets": subnets}
    groups = appspec_doc.find(vpc, "securitygroups")
    if groups is not None:
        result["securityGroups"] = _strings(groups, f"{where}.SecurityGroups")
    public = appspec_doc.find(vpc, "assignpublicip")
    if public is not None:
        if public not in ASSIGN_PUBLIC_IP:
            raise InvalidRevision(f"{where}.AssignPublicIp must be ENABLED or DISABLED")
        result["assignPublicIp"] = public
    return {"awsvpcConfiguration": result}


def _providers(value: Any) -> list[dict[str, Any]]:
    where = f"{WHERE}.CapacityProviderStrategy"
    if not isinstance(value, list) or not value:
        raise InvalidRevision(f"{where} must be a list of capacity providers")
    result = []
    for index, item in enumerate(value):
        entry = appspec_doc.mapping(item, f"{where}[{index}]")
        provider = appspec_doc.get(entry, "capacityprovider", f"{where}[{index}]")
        if not isinstance(provider, str) or not provider:
            raise InvalidRevision(f"{where}[{index}].CapacityProvider must be a name")
        item_doc: dict[str, Any] = {"capacityProvider": provider}
        for key, member, top in (("base", "base", 100000), ("weight", "weight", 1000)):
            number = appspec_doc.find(entry, key)
            if number is None:
                continue
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= top:
                raise InvalidRevision(f"{where}[{index}].{key.capitalize()} must be 0-{top}")
            item_doc[member] = number
        result.append(item_doc)
    return result


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidRevision(f"{what} must be a list of names")
    return list(value)
