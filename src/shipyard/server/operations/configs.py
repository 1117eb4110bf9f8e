"""Deployment configurations: create / get / list / delete custom ones; the 17 predefined
ones (store/predefined_configs.py) are read-only.

Rules (CodeDeploy limits page and model docs):
- Server configs need minimumHealthyHosts: HOST_COUNT >= 0 or FLEET_PERCENT 0-99;
  they may carry a zonalConfig and only an AllAtOnce trafficRoutingConfig.
- Lambda and ECS configs need a trafficRoutingConfig: canary and linear steps shift
  1-99 % and the whole shift spans at most 2880 minutes.
"""

from __future__ import annotations

import math
from typing import Any

from shipyard.errors import ApiError
from shipyard.model import ComputePlatform, new_uuid
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import members
from shipyard.store import arns, configs, groups, tags

MAX_SHIFT_MINUTES = 2880
MINIMUM_HEALTHY_TYPES = ("HOST_COUNT", "FLEET_PERCENT")
TRAFFIC_TYPES = ("TimeBasedCanary", "TimeBasedLinear", "AllAtOnce")
_HOSTS_ERROR = "InvalidMinimumHealthyHostValueException"
_TRAFFIC_ERROR = "InvalidTrafficRoutingConfigurationException"
_ZONAL_ERROR = "InvalidZonalDeploymentConfigurationException"


def _config_name(body: dict[str, Any]) -> str:
    value = validate.required(body, "deploymentConfigName", "DeploymentConfigNameRequiredException")
    return validate.name(value, "InvalidDeploymentConfigNameException", "deploymentConfigName")


def minimum_healthy_hosts(value: Any, exception: str, what: str) -> dict[str, Any]:
    item = members.structure(value, exception, what)
    kind = validate.enum(item.get("type"), MINIMUM_HEALTHY_TYPES, exception, f"{what}.type")
    maximum = 99 if kind == "FLEET_PERCENT" else None
    amount = members.integer(item.get("value"), exception, f"{what}.value", 0, maximum)
    return {"type": kind, "value": amount}


def traffic_routing(value: Any) -> dict[str, Any]:
    item = members.structure(value, _TRAFFIC_ERROR, "trafficRoutingConfig")
    kind = validate.enum(
        item.get("type"), TRAFFIC_TYPES, _TRAFFIC_ERROR, "trafficRoutingConfig.type"
    )
    given = {m for m in ("timeBasedCanary", "timeBasedLinear") if item.get(m) is not None}
    expected = {"TimeBasedCanary": "timeBasedCanary", "TimeBasedLinear": "timeBasedLinear"}.get(
        kind
    )
    if given - {expected}:
        raise ApiError(_TRAFFIC_ERROR, f"a {kind} config cannot have {', '.join(sorted(given))}")
    if expected is None:
        return {"type": kind}
    prefix = "canary" if kind == "TimeBasedCanary" else "linear"
    step = members.structure(item.get(expected), _TRAFFIC_ERROR, expected)
    percent = members.integer(
        step.get(f"{prefix}Percentage"), _TRAFFIC_ERROR, f"{prefix}Percentage", 1, 99
    )
    interval = members.integer(
        step.get(f"{prefix}Interval"), _TRAFFIC_ERROR, f"{prefix}Interval", 1, MAX_SHIFT_MINUTES
    )
    # Linear shifts ceil(100 / percent) times, one interval apart.
    shifts = 2 if prefix == "canary" else math.ceil(100 / percent)
    if (shifts - 1) * interval > MAX_SHIFT_MINUTES:
        raise ApiError(
            _TRAFFIC_ERROR,
            f"traffic shifting would take {(shifts - 1) * interval} minutes; "
            f"at most {MAX_SHIFT_MINUTES} are allowed",
        )
    return {
        "type": kind,
        expected: {f"{prefix}Percentage": percent, f"{prefix}Interval": interval},
    }


def zonal_config(value: Any) -> dict[str, Any]:
    """ZonalConfig, with the documented defaults filled in: the first zone waits as
    long as the others, and zones keep 0 % healthy unless told otherwise."""
    item = members.structure(value, _ZONAL_ERROR, "zonalConfig")
    result: dict[str, Any] = {}
    for member in ("firstZoneMonitorDurationInSeconds", "monitorDurationInSeconds"):
        if item.get(member) is not None:
            result[member] = members.integer(item[member], _ZONAL_ERROR, member, 0)
    if "monitorDurationInSeconds" in result:
        result.setdefault("firstZoneMonitorDurationInSeconds", result["monitorDurationInSeconds"])
    per_zone = item.get("minimumHealthyHostsPerZone")
    result["minimumHealthyHostsPerZone"] = (
        {"type": "FLEET_PERCENT", "value": 0}
        if per_zone is None
        else minimum_healthy_hosts(per_zone, _ZONAL_ERROR, "minimumHealthyHostsPerZone")
    )
    return result


def _config_members(body: dict[str, Any], platform: str) -> dict[str, Any]:
    """minimumHealthyHosts / trafficRoutingConfig / zonalConfig for the platform."""
    result: dict[str, Any] = {}
    hosts, traffic, zonal = (
        body.get("minimumHealthyHosts"),
        body.get("trafficRoutingConfig"),
        body.get("zonalConfig"),
    )
    if platform == "Server":
        if hosts is None:
            raise ApiError(_HOSTS_ERROR, "Server deployment configs need minimumHealthyHosts")
        result["minimumHealthyHosts"] = minimum_healthy_hosts(
            hosts, _HOSTS_ERROR, "minimumHealthyHosts"
        )
        if traffic is not None:
            result["trafficRoutingConfig"] = traffic_routing(traffic)
            if result["trafficRoutingConfig"]["type"] != "AllAtOnce":
                raise ApiError(_TRAFFIC_ERROR, "Server configs only shift traffic AllAtOnce")
        if zonal is not None:
            result["zonalConfig"] = zonal_config(zonal)
        return result
    if hosts is not None:
        raise ApiError(_HOSTS_ERROR, f"{platform} configs have no minimumHealthyHosts")
    if zonal is not None:
        raise ApiError(_ZONAL_ERROR, "zonalConfig is for Server deployment configs only")
    if traffic is None:
        raise ApiError(_TRAFFIC_ERROR, f"{platform} configs need a trafficRoutingConfig")
    result["trafficRoutingConfig"] = traffic_routing(traffic)
    return result


def create_deployment_config(call: Call) -> Json:
    name = _config_name(call.body)
    if configs.is_reserved_name(name):
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            "Custom deployment config names may not start with CodeDeployDefault.",
        )
    platform = call.body.get("computePlatform")
    platform = validate.enum(
        "Server" if platform is None else platform,
        [p.value for p in ComputePlatform],
        "InvalidComputePlatformException",
        "computePlatform",
    )
    info: dict[str, Any] = {
        "deploymentConfigId": new_uuid(),
        "deploymentConfigName": name,
        **_config_members(call.body, platform),
        "createTime": call.now(),
        "computePlatform": platform,
    }
    with call.services.db.tx() as conn:
        if configs.get_deployment_config(conn, name) is not None:
            raise ApiError("DeploymentConfigAlreadyExistsException", f"Config {name!r} exists")
        configs.insert_deployment_config(conn, info)
    return {"deploymentConfigId": info["deploymentConfigId"]}


def get_deployment_config(call: Call) -> Json:
    name = _config_name(call.body)
    with call.services.db.tx() as conn:
        info = configs.get_deployment_config(conn, name)
    if info is None:
        raise ApiError("DeploymentConfigDoesNotExistException", f"No deployment config {name!r}")
    return {"deploymentConfigInfo": info}


def list_deployment_configs(call: Call) -> Json:
    with call.services.db.tx() as conn:
        names = configs.list_deployment_config_names(conn)
    return members.page("deploymentConfigsList", names, call.body.get("nextToken"))


def delete_deployment_config(call: Call) -> Json:
    """Predefined configs and configs a group uses cannot go; a missing one is a no-op
    (the model has no DoesNotExist error for this operation)."""
    name = _config_name(call.body)
    if configs.is_predefined(name):
        raise ApiError("InvalidOperationException", f"{name} is predefined and cannot be deleted")
    with call.services.db.tx() as conn:
        users = groups.groups_using_config(conn, name)
        if users:
            app, group = users[0]
            raise ApiError(
                "DeploymentConfigInUseException",
                f"{name} is used by deployment group {group!r} of application {app!r}",
            )
        configs.delete_deployment_config(conn, name)
        tags.delete_resource_tags(
            conn, arns.deployment_config_arn(call.services.config.region, name)
        )
    return {}


OPERATIONS: dict[str, Handler] = {
    "CreateDeploymentConfig": create_deployment_config,
    "GetDeploymentConfig": get_deployment_config,
    "ListDeploymentConfigs": list_deployment_configs,
    "DeleteDeploymentConfig": delete_deployment_config,
}
