"""Validation of the CreateDeploymentGroup / UpdateDeploymentGroup members.

``MEMBER_RULES`` maps each member to a function that checks the raw JSON value and
returns it normalised for storage; ``check_group`` then checks the rules that span
members (tag filters vs tag sets, deployment style vs platform and load balancer).
Limits: 10 alarms, 10 triggers, 10 load balancers / target groups, 3 tag groups.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from shipyard.errors import ApiError
from shipyard.server import validate
from shipyard.server.operations import members

MAX_ALARMS = 10
MAX_TRIGGERS = 10
MAX_AUTO_SCALING_GROUPS = 10
MAX_LOAD_BALANCERS = 10
MAX_BLUE_GREEN_MINUTES = {"Server": 2880, "Lambda": 2880, "ECS": 7200}  # 48 h; ECS 120 h

TRIGGER_EVENTS = (
    "DeploymentStart",
    "DeploymentSuccess",
    "DeploymentFailure",
    "DeploymentStop",
    "DeploymentRollback",
    "DeploymentReady",
    "InstanceStart",
    "InstanceSuccess",
    "InstanceFailure",
    "InstanceReady",
)
ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST")
SUSPENDABLE_PROCESSES = ("Terminate", "AZRebalance", "InstanceRefresh", "ScheduledActions")

_ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]+")


def service_role_arn(value: Any) -> str:
    if not isinstance(value, str) or not _ROLE_ARN_RE.fullmatch(value):
        raise ApiError("InvalidRoleException", f"not an IAM role ARN: {value!r}")
    return value


def auto_scaling_groups(value: Any) -> list[dict[str, str]]:
    error = "InvalidAutoScalingGroupException"
    names = members.array(value, error, "autoScalingGroups", MAX_AUTO_SCALING_GROUPS)
    return [
        {"name": members.text(name, error, "an Auto Scaling group name", 255)} for name in names
    ]


def trigger_configurations(value: Any) -> list[dict[str, Any]]:
    error = "InvalidTriggerConfigException"
    items = members.array(value, error, "triggerConfigurations")
    if len(items) > MAX_TRIGGERS:
        raise ApiError(
            "TriggerTargetsLimitExceededException", f"at most {MAX_TRIGGERS} triggers per group"
        )
    triggers = []
    for item in items:
        item = members.structure(item, error, "a trigger")
        events = members.array(item.get("triggerEvents"), error, "triggerEvents")
        if not events:
            raise ApiError(error, "a trigger needs at least one trigger event")
        triggers.append(
            {
                "triggerName": members.text(item.get("triggerName"), error, "triggerName", 100),
                "triggerTargetArn": members.text(
                    item.get("triggerTargetArn"), error, "triggerTargetArn", 1011
                ),
                "triggerEvents": [
                    validate.enum(e, TRIGGER_EVENTS, error, "a trigger event")
                    for e in dict.fromkeys(events)
                ],
            }
        )
    if len({t["triggerName"] for t in triggers}) != len(triggers):
        raise ApiError(error, "trigger names must be unique within a group")
    return triggers


def _flag(item: dict[str, Any], member: str, error: str) -> bool:
    value = item.get(member)
    return False if value is None else validate.boolean(value, error, member)


def alarm_configuration(value: Any) -> dict[str, Any]:
    error = "InvalidAlarmConfigException"
    item = members.structure(value, error, "alarmConfiguration")
    alarms = members.array(item.get("alarms") or [], error, "alarms")
    if len(alarms) > MAX_ALARMS:
        raise ApiError("AlarmsLimitExceededException", f"at most {MAX_ALARMS} alarms per group")
    names = [
        members.text(members.structure(a, error, "an alarm").get("name"), error, "alarm name", 255)
        for a in alarms
    ]
    if len(set(names)) != len(names):
        raise ApiError(error, "alarm names must be unique")
    enabled = _flag(item, "enabled", error)
    if enabled and not names:
        raise ApiError(error, "an enabled alarm configuration needs at least one alarm")
    return {
        "enabled": enabled,
        "ignorePollAlarmFailure": _flag(item, "ignorePollAlarmFailure", error),
        "alarms": [{"name": name} for name in names],
    }


def auto_rollback_configuration(value: Any) -> dict[str, Any]:
    error = "InvalidAutoRollbackConfigException"
    item = members.structure(value, error, "autoRollbackConfiguration")
    events = [
        validate.enum(e, ROLLBACK_EVENTS, error, "a rollback event")
        for e in dict.fromkeys(members.array(item.get("events") or [], error, "events"))
    ]
    enabled = _flag(item, "enabled", error)
    if enabled and not events:
        raise ApiError(error, "an enabled rollback configuration needs at least one event")
    return {"enabled": enabled, "events": events}


def outdated_instances_strategy(value: Any) -> str:
    return validate.enum(
        value, ("UPDATE", "IGNORE"), "InvalidInputException", "outdatedInstancesStrategy"
    )


def deployment_style(value: Any) -> dict[str, str]:
    error = "InvalidDeploymentStyleException"
    item = members.structure(value, error, "deploymentStyle")
    kind = item.get("deploymentType") or "IN_PLACE"
    option = item.get("deploymentOption") or "WITHOUT_TRAFFIC_CONTROL"
    return {
        "deploymentType": validate.enum(kind, ("IN_PLACE", "BLUE_GREEN"), error, "deploymentType"),
        "deploymentOption": validate.enum(
            option, ("WITH_TRAFFIC_CONTROL", "WITHOUT_TRAFFIC_CONTROL"), error, "deploymentOption"
        ),
    }


def blue_green_configuration(value: Any) -> dict[str, Any]:
    error = "InvalidBlueGreenDeploymentConfigurationException"
    item = members.structure(value, error, "blueGreenDeploymentConfiguration")
    result: dict[str, Any] = {}
    terminate = item.get("terminateBlueInstancesOnDeploymentSuccess")
    if terminate is not None:
        terminate = members.structure(terminate, error, "terminateBlueInstancesOnDeploymentSuccess")
        action = terminate.get("action") or "TERMINATE"
        wait = terminate.get("terminationWaitTimeInMinutes", 0)
        result["terminateBlueInstancesOnDeploymentSuccess"] = {
            "action": validate.enum(action, ("TERMINATE", "KEEP_ALIVE"), error, "action"),
            "terminationWaitTimeInMinutes": members.integer(
                wait, error, "terminationWaitTimeInMinutes", 0, 2880
            ),
        }
    ready = item.get("deploymentReadyOption")
    if ready is not None:
        ready = members.structure(ready, error, "deploymentReadyOption")
        action = ready.get("actionOnTimeout") or "CONTINUE_DEPLOYMENT"
        result["deploymentReadyOption"] = {
            "actionOnTimeout": validate.enum(
                action, ("CONTINUE_DEPLOYMENT", "STOP_DEPLOYMENT"), error, "actionOnTimeout"
            ),
            "waitTimeInMinutes": members.integer(
                ready.get("waitTimeInMinutes", 0), error, "waitTimeInMinutes", 0, 7200
            ),
        }
    green = item.get("greenFleetProvisioningOption")
    if green is not None:
        green = members.structure(green, error, "greenFleetProvisioningOption")
        action = green.get("action") or "DISCOVER_EXISTING"
        choices = ("DISCOVER_EXISTING", "COPY_AUTO_SCALING_GROUP")
        result["greenFleetProvisioningOption"] = {
            "action": validate.enum(action, choices, error, "greenFleetProvisioningOption.action")
        }
    return result


def _named(value: Any, error: str, what: str, maximum: int) -> list[dict[str, str]]:
    items = members.array(value, error, what, maximum)
    return [
        {"name": members.text(members.structure(i, error, what).get("name"), error, what, 255)}
        for i in items
    ]


def _traffic_route(value: Any, error: str, what: str, minimum: int) -> dict[str, list[str]]:
    item = members.structure(value, error, what)
    arns = members.array(item.get("listenerArns") or [], error, f"{what}.listenerArns", 1)
    if len(arns) < minimum:
        raise ApiError(error, f"{what} needs one listener ARN")
    return {"listenerArns": [members.text(a, error, "a listener ARN", 1011) for a in arns]}


def load_balancer_info(value: Any) -> dict[str, Any]:
    error, pair_error = "InvalidLoadBalancerInfoException", "InvalidTargetGroupPairException"
    item = members.structure(value, error, "loadBalancerInfo")
    result: dict[str, Any] = {}
    for member in ("elbInfoList", "targetGroupInfoList"):
        if item.get(member) is not None:
            result[member] = _named(item[member], error, member, MAX_LOAD_BALANCERS)
    if item.get("targetGroupPairInfoList") is not None:
        pairs = members.array(item["targetGroupPairInfoList"], pair_error, "target group pairs", 1)
        result["targetGroupPairInfoList"] = []
        for pair in pairs:
            pair = members.structure(pair, pair_error, "a target group pair")
            target_groups = _named(pair.get("targetGroups"), pair_error, "targetGroups", 2)
            if len(target_groups) != 2:
                raise ApiError(pair_error, "a target group pair names exactly two target groups")
            entry: dict[str, Any] = {
                "targetGroups": target_groups,
                "prodTrafficRoute": _traffic_route(
                    pair.get("prodTrafficRoute"), pair_error, "prodTrafficRoute", 1
                ),
            }
            if pair.get("testTrafficRoute") is not None:
                entry["testTrafficRoute"] = _traffic_route(
                    pair["testTrafficRoute"], pair_error, "testTrafficRoute", 0
                )
            result["targetGroupPairInfoList"].append(entry)
    return result


def ecs_services(value: Any) -> list[dict[str, str]]:
    error = "InvalidECSServiceException"
    services = []
    for item in members.array(value, error, "ecsServices", 1):
        item = members.structure(item, error, "an ECS service")
        services.append(
            {
                "serviceName": members.text(item.get("serviceName"), error, "serviceName", 255),
                "clusterName": members.text(item.get("clusterName"), error, "clusterName", 255),
            }
        )
    return services


def ec2_deployment_options(value: Any) -> dict[str, list[str]]:
    error = "InvalidAutoScalingGroupProcessToSuspendException"
    item = members.structure(value, error, "ec2DeploymentOptions")
    processes = members.array(
        item.get("autoScalingGroupProcessesToSuspend") or [], error, "processes", 4
    )
    return {
        "autoScalingGroupProcessesToSuspend": [
            validate.enum(p, SUSPENDABLE_PROCESSES, error, "a process")
            for p in dict.fromkeys(processes)
        ]
    }


MEMBER_RULES: dict[str, Callable[[Any], Any]] = {
    "serviceRoleArn": service_role_arn,
    "ec2TagFilters": lambda v: members.tag_filters(v, "InvalidEC2TagException", "ec2TagFilters"),
    "onPremisesInstanceTagFilters": lambda v: members.tag_filters(
        v, "InvalidTagException", "onPremisesInstanceTagFilters"
    ),
    "ec2TagSet": lambda v: members.tag_set(v, "ec2TagSetList", "InvalidEC2TagException"),
    "onPremisesTagSet": lambda v: members.tag_set(v, "onPremisesTagSetList", "InvalidTagException"),
    "autoScalingGroups": auto_scaling_groups,
    "triggerConfigurations": trigger_configurations,
    "alarmConfiguration": alarm_configuration,
    "autoRollbackConfiguration": auto_rollback_configuration,
    "outdatedInstancesStrategy": outdated_instances_strategy,
    "deploymentStyle": deployment_style,
    "blueGreenDeploymentConfiguration": blue_green_configuration,
    "loadBalancerInfo": load_balancer_info,
    "ecsServices": ecs_services,
    "ec2DeploymentOptions": ec2_deployment_options,
    "terminationHookEnabled": lambda v: validate.boolean(
        v, "InvalidInputException", "terminationHookEnabled"
    ),
}


def validated_members(body: dict[str, Any]) -> dict[str, Any]:
    """Every given (non-null) member of MEMBER_RULES, normalised."""
    return {m: rule(body[m]) for m, rule in MEMBER_RULES.items() if body.get(m) is not None}


def defaults(platform: str) -> dict[str, Any]:
    """Members every group has before the request's members are applied."""
    traffic_shifting = platform in ("Lambda", "ECS")
    return {
        "ec2TagFilters": [],
        "onPremisesInstanceTagFilters": [],
        "autoScalingGroups": [],
        "triggerConfigurations": [],
        "alarmConfiguration": {"enabled": False, "ignorePollAlarmFailure": False, "alarms": []},
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN" if traffic_shifting else "IN_PLACE",
            "deploymentOption": (
                "WITH_TRAFFIC_CONTROL" if traffic_shifting else "WITHOUT_TRAFFIC_CONTROL"
            ),
        },
        "outdatedInstancesStrategy": "UPDATE",
        "computePlatform": platform,
        "terminationHookEnabled": False,
    }


def _set_lists(info: dict[str, Any], member: str, list_member: str) -> list[Any]:
    return [group for group in (info.get(member) or {}).get(list_member) or [] if group]


def check_group(info: dict[str, Any]) -> None:
    """Rules that span members, checked on the group as it would be stored."""
    if info.get("ec2TagFilters") and _set_lists(info, "ec2TagSet", "ec2TagSetList"):
        raise ApiError(
            "InvalidEC2TagCombinationException", "Use ec2TagFilters or ec2TagSet, not both"
        )
    if info.get("onPremisesInstanceTagFilters") and _set_lists(
        info, "onPremisesTagSet", "onPremisesTagSetList"
    ):
        raise ApiError(
            "InvalidOnPremisesTagCombinationException",
            "Use onPremisesInstanceTagFilters or onPremisesTagSet, not both",
        )
    platform = info["computePlatform"]
    style = info["deploymentStyle"]
    if platform in ("Lambda", "ECS") and style != {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }:
        raise ApiError(
            "InvalidDeploymentStyleException",
            f"{platform} groups deploy BLUE_GREEN WITH_TRAFFIC_CONTROL",
        )
    if platform == "Server" and style["deploymentOption"] == "WITH_TRAFFIC_CONTROL":
        balancers = info.get("loadBalancerInfo") or {}
        if not balancers.get("elbInfoList") and not balancers.get("targetGroupInfoList"):
            raise ApiError(
                "InvalidLoadBalancerInfoException",
                "WITH_TRAFFIC_CONTROL needs a load balancer or target group in loadBalancerInfo",
            )
    if platform == "Server" and style == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }:
        raise ApiError("InvalidDeploymentStyleException", "BLUE_GREEN needs WITH_TRAFFIC_CONTROL")
    if platform == "ECS" and not info.get("ecsServices"):
        raise ApiError("InvalidECSServiceException", "ECS deployment groups need ecsServices")
    ready = (info.get("blueGreenDeploymentConfiguration") or {}).get("deploymentReadyOption")
    if ready and ready["waitTimeInMinutes"] > MAX_BLUE_GREEN_MINUTES[platform]:
        raise ApiError(
            "InvalidBlueGreenDeploymentConfigurationException",
            f"waitTimeInMinutes is at most {MAX_BLUE_GREEN_MINUTES[platform]} for {platform}",
        )
