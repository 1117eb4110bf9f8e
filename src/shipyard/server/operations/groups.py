"""Deployment groups: create, get, batch get, list, update (with rename) and delete.

The stored deploymentGroupInfo holds every member, with defaults filled in (empty
lists, disabled alarms, UPDATE for outdated instances, the platform's deployment style
and default config), so GetDeploymentGroup and the engine read the same complete doc.
Member rules live in ``group_members``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.errors import ApiError
from shipyard.model import new_uuid
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import ecs_deployments, group_members, members
from shipyard.store import arns, configs, groups, tags
from shipyard.store.predefined_configs import DEFAULT_CONFIG_FOR_PLATFORM

BATCH_LIMIT = 100


def _group_name(value: Any) -> str:
    return validate.name(value, "InvalidDeploymentGroupNameException", "deploymentGroupName")


def _required_group_name(body: dict[str, Any], member: str) -> str:
    return _group_name(validate.required(body, member, "DeploymentGroupNameRequiredException"))


def _require_group(conn: Connection, app: str, name: str) -> dict[str, Any]:
    info = groups.get_deployment_group(conn, app, name)
    if info is None:
        raise ApiError(
            "DeploymentGroupDoesNotExistException",
            f"Deployment group {name!r} of application {app!r} does not exist",
        )
    return info


def _config_name(conn: Connection, value: Any, platform: str) -> str:
    """A config name the group may use: it exists and is for the group's platform."""
    name = validate.name(value, "InvalidDeploymentConfigNameException", "deploymentConfigName")
    info = configs.get_deployment_config(conn, name)
    if info is None:
        raise ApiError("DeploymentConfigDoesNotExistException", f"No deployment config {name!r}")
    if info.get("computePlatform", "Server") != platform:
        raise ApiError(
            "InvalidDeploymentConfigNameException",
            f"{name} is a {info.get('computePlatform')} config; this group is {platform}",
        )
    return name


# The members an ECS group's backend check reads.
_ECS_MEMBERS = frozenset({"ecsServices", "loadBalancerInfo", "blueGreenDeploymentConfiguration"})


def _check_ecs_mapping(conn: Connection, info: dict[str, Any], current_name: str) -> None:
    """An ECS service belongs to at most one deployment group."""
    wanted = {(s["clusterName"], s["serviceName"]) for s in info.get("ecsServices") or []}
    if not wanted:
        return
    for other in groups.all_deployment_groups(conn):
        same = (other["applicationName"], other["deploymentGroupName"]) == (
            info["applicationName"],
            current_name,
        )
        taken = {(s["clusterName"], s["serviceName"]) for s in other.get("ecsServices") or []}
        if not same and wanted & taken:
            raise ApiError(
                "ECSServiceMappingLimitExceededException",
                f"the ECS service is already used by group {other['deploymentGroupName']!r}",
            )


async def create_deployment_group(call: Call) -> Json:
    body = call.body
    app = members.application_name(body)
    name = _required_group_name(body, "deploymentGroupName")
    validate.required(body, "serviceRoleArn", "RoleRequiredException")
    given = group_members.validated_members(body)
    new_tags = members.resource_tags(body.get("tags") or [], "InvalidTagsToAddException")
    with call.services.db.tx() as conn:
        platform = members.require_application(conn, app)["computePlatform"]
    if platform == "ECS":  # the backend is asked outside the transaction
        await ecs_deployments.check_group(
            call, {**group_members.defaults(platform), **given, "applicationName": app}
        )
    with call.services.db.tx() as conn:
        platform = members.require_application(conn, app)["computePlatform"]
        config = body.get("deploymentConfigName")
        if config is None:
            config = DEFAULT_CONFIG_FOR_PLATFORM[platform]
        info = {
            "applicationName": app,
            "deploymentGroupId": new_uuid(),
            "deploymentGroupName": name,
            "deploymentConfigName": _config_name(conn, config, platform),
            **group_members.defaults(platform),
            **given,
        }
        group_members.check_group(info)
        if groups.get_deployment_group(conn, app, name) is not None:
            raise ApiError(
                "DeploymentGroupAlreadyExistsException", f"Deployment group {name!r} exists"
            )
        _check_ecs_mapping(conn, info, name)
        groups.insert_deployment_group(conn, info)
        region = call.services.config.region
        tags.put_resource_tags(conn, arns.deployment_group_arn(region, app, name), new_tags)
    return {"deploymentGroupId": info["deploymentGroupId"]}


def get_deployment_group(call: Call) -> Json:
    app = members.application_name(call.body)
    name = _required_group_name(call.body, "deploymentGroupName")
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        return {"deploymentGroupInfo": _require_group(conn, app, name)}


def batch_get_deployment_groups(call: Call) -> Json:
    app = members.application_name(call.body)
    if call.body.get("deploymentGroupNames") is None:
        raise ApiError("DeploymentGroupNameRequiredException", "deploymentGroupNames is required")
    names = validate.batch(
        call.body["deploymentGroupNames"],
        BATCH_LIMIT,
        "InvalidDeploymentGroupNameException",
        "BatchLimitExceededException",
        "deploymentGroupNames",
    )
    unique = [_group_name(name) for name in dict.fromkeys(names)]
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        found = {name: groups.get_deployment_group(conn, app, name) for name in unique}
    result: Json = {"deploymentGroupsInfo": [info for info in found.values() if info]}
    missing = [name for name, info in found.items() if info is None]
    if missing:
        result["errorMessage"] = f"Deployment groups not found: {', '.join(missing)}"
    return result


def list_deployment_groups(call: Call) -> Json:
    app = members.application_name(call.body)
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        names = groups.list_deployment_group_names(conn, app)
    return {
        "applicationName": app,
        **members.page("deploymentGroups", names, call.body.get("nextToken")),
    }


async def update_deployment_group(call: Call) -> Json:
    """Members given replace the stored ones; an empty list clears a list member."""
    body = call.body
    app = members.application_name(body)
    current = _required_group_name(body, "currentDeploymentGroupName")
    new = body.get("newDeploymentGroupName")
    new = current if new is None else _group_name(new)
    given = group_members.validated_members(body)
    with call.services.db.tx() as conn:
        platform = members.require_application(conn, app)["computePlatform"]
        before = _require_group(conn, app, current)
    if platform == "ECS" and _ECS_MEMBERS & set(given):
        await ecs_deployments.check_group(call, {**before, **given, "applicationName": app})
    with call.services.db.tx() as conn:
        platform = members.require_application(conn, app)["computePlatform"]
        info = {**_require_group(conn, app, current), **given, "deploymentGroupName": new}
        if body.get("deploymentConfigName") is not None:
            info["deploymentConfigName"] = _config_name(
                conn, body["deploymentConfigName"], platform
            )
        group_members.check_group(info)
        if new != current and groups.get_deployment_group(conn, app, new) is not None:
            raise ApiError(
                "DeploymentGroupAlreadyExistsException", f"Deployment group {new!r} exists"
            )
        _check_ecs_mapping(conn, info, current)
        groups.save_deployment_group(conn, app, current, info)
        if new != current:
            region = call.services.config.region
            tags.move_resource_tags(
                conn,
                arns.deployment_group_arn(region, app, current),
                arns.deployment_group_arn(region, app, new),
            )
    return {"hooksNotCleanedUp": []}  # Shipyard installs no Auto Scaling hooks


def delete_deployment_group(call: Call) -> Json:
    """Deleting a group that does not exist is a no-op (the model has no error for it)."""
    app = members.application_name(call.body)
    name = _required_group_name(call.body, "deploymentGroupName")
    with call.services.db.tx() as conn:
        groups.delete_deployment_group(conn, app, name)
        region = call.services.config.region
        tags.delete_resource_tags(conn, arns.deployment_group_arn(region, app, name))
    return {"hooksNotCleanedUp": []}  # Shipyard installs no Auto Scaling hooks


OPERATIONS: dict[str, Handler] = {
    "CreateDeploymentGroup": create_deployment_group,
    "GetDeploymentGroup": get_deployment_group,
    "BatchGetDeploymentGroups": batch_get_deployment_groups,
    "ListDeploymentGroups": list_deployment_groups,
    "UpdateDeploymentGroup": update_deployment_group,
    "DeleteDeploymentGroup": delete_deployment_group,
}
