"""On-premises instances: register / deregister / get / batch get / list, their tags,
and Shipyard's ShipyardIssueInstanceCredentials (the keys an agent signs with).

An instance is registered under exactly one IAM ARN (session or user); that ARN is
the HostIdentifier its agent presents. Deregistering keeps the record (with its
deregisterTime) but revokes the instance's access keys at once.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from shipyard.errors import ApiError
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import members
from shipyard.store import arns, credentials, instances

BATCH_LIMIT = 25
MAX_INSTANCES_PER_TAG_CALL = 100
MAX_INSTANCE_TAGS = 10

_SESSION_ARN_RE = re.compile(r"arn:aws[a-z-]*:sts::\d{12}:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+")
_USER_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:user/([\w+=,.@-]+/)*[\w+=,.@-]+")


def _instance_name(value: Any) -> str:
    return validate.name(value, "InvalidInstanceNameException", "instanceName")


def _required_name(body: dict[str, Any]) -> str:
    return _instance_name(validate.required(body, "instanceName", "InstanceNameRequiredException"))


def _iam_arn(body: dict[str, Any]) -> tuple[str, str]:
    """(member, arn) of the one IAM ARN given."""
    session, user = body.get("iamSessionArn"), body.get("iamUserArn")
    if session and user:
        raise ApiError(
            "MultipleIamArnsProvidedException", "Give iamSessionArn or iamUserArn, not both"
        )
    if session:
        if not isinstance(session, str) or not _SESSION_ARN_RE.fullmatch(session):
            raise ApiError(
                "InvalidIamSessionArnException",
                f"not an STS assumed-role session ARN: {session!r}",
            )
        return "iamSessionArn", session
    if user:
        if not isinstance(user, str) or not _USER_ARN_RE.fullmatch(user):
            raise ApiError("InvalidIamUserArnException", f"not an IAM user ARN: {user!r}")
        return "iamUserArn", user
    raise ApiError("IamArnRequiredException", "iamSessionArn or iamUserArn is required")


def register_on_premises_instance(call: Call) -> Json:
    name = _required_name(call.body)
    member, iam_arn = _iam_arn(call.body)
    with call.services.db.tx() as conn:
        if instances.is_registered(conn, name):
            raise ApiError("InstanceNameAlreadyRegisteredException", f"{name!r} is registered")
        holder = instances.instance_holding_arn(conn, iam_arn)
        if holder is not None and holder != name:
            exception = (
                "IamSessionArnAlreadyRegisteredException"
                if member == "iamSessionArn"
                else "IamUserArnAlreadyRegisteredException"
            )
            raise ApiError(exception, f"{iam_arn} is already registered to instance {holder!r}")
        instances.register_instance(
            conn,
            name=name,
            arn_member=member,
            iam_arn=iam_arn,
            instance_arn=arns.instance_arn(call.services.config.region, name),
            now=call.now(),
        )
    return {}


def deregister_on_premises_instance(call: Call) -> Json:
    name = _required_name(call.body)
    with call.services.db.tx() as conn:
        instances.deregister_instance(conn, name, call.now())
        credentials.revoke_principal(conn, "instance", name)
    return {}


def get_on_premises_instance(call: Call) -> Json:
    name = _required_name(call.body)
    with call.services.db.tx() as conn:
        info = instances.get_instance(conn, name)
    if info is None:
        raise ApiError("InstanceNotRegisteredException", f"No instance named {name!r}")
    return {"instanceInfo": info}


def batch_get_on_premises_instances(call: Call) -> Json:
    if call.body.get("instanceNames") is None:
        raise ApiError("InstanceNameRequiredException", "instanceNames is required")
    names = validate.batch(
        call.body["instanceNames"],
        BATCH_LIMIT,
        "InvalidInstanceNameException",
        "BatchLimitExceededException",
        "instanceNames",
    )
    unique = [_instance_name(name) for name in dict.fromkeys(names)]
    with call.services.db.tx() as conn:
        found = [instances.get_instance(conn, name) for name in unique]
    return {"instanceInfos": [info for info in found if info is not None]}


def list_on_premises_instances(call: Call) -> Json:
    status = call.body.get("registrationStatus")
    if status is not None:
        status = validate.enum(
            status,
            ("Registered", "Deregistered"),
            "InvalidRegistrationStatusException",
            "registrationStatus",
        )
    filters = call.body.get("tagFilters")
    if filters is not None:
        filters = members.tag_filters(filters, "InvalidTagFilterException", "tagFilters")
    with call.services.db.tx() as conn:
        names = instances.list_instance_names(conn, registration_status=status, tag_filters=filters)
    return members.page("instanceNames", names, call.body.get("nextToken"))


def _tag_request(
    body: dict[str, Any], *, need_values: bool
) -> tuple[list[dict[str, str]], list[str]]:
    """Validated (tags, instanceNames) of AddTagsTo/RemoveTagsFrom OnPremisesInstances."""
    raw_tags = validate.required(body, "tags", "TagRequiredException")
    tags = []
    for tag in members.array(raw_tags, "InvalidTagException", "tags"):
        tag = members.structure(tag, "InvalidTagException", "a tag")
        if not tag.get("Key"):
            raise ApiError(
                "InvalidTagException", "Tags need a Key; value-only tags are not allowed"
            )
        item = {"Key": members.text(tag["Key"], "InvalidTagException", "a tag Key", 128)}
        if need_values or tag.get("Value") is not None:
            item["Value"] = members.text(
                tag.get("Value"), "InvalidTagException", "a tag Value", 256, 0
            )
        tags.append(item)
    if len(tags) > MAX_INSTANCE_TAGS:
        raise ApiError("TagLimitExceededException", f"at most {MAX_INSTANCE_TAGS} tags per call")
    raw_names = validate.required(body, "instanceNames", "InstanceNameRequiredException")
    names = validate.string_list(raw_names, "InvalidInstanceNameException", "instanceNames")
    if len(names) > MAX_INSTANCES_PER_TAG_CALL:
        raise ApiError(
            "InstanceLimitExceededException",
            f"at most {MAX_INSTANCES_PER_TAG_CALL} instances per call",
        )
    return tags, [_instance_name(name) for name in dict.fromkeys(names)]


def _require_registered(conn: Connection, names: list[str]) -> None:
    for name in names:
        if not instances.is_registered(conn, name):
            raise ApiError("InstanceNotRegisteredException", f"{name!r} is not registered")


def add_tags_to_on_premises_instances(call: Call) -> Json:
    tags, names = _tag_request(call.body, need_values=True)
    new_keys = {tag["Key"] for tag in tags}
    with call.services.db.tx() as conn:
        _require_registered(conn, names)
        for name in names:
            if len(set(instances.instance_tags(conn, name)) | new_keys) > MAX_INSTANCE_TAGS:
                raise ApiError(
                    "TagLimitExceededException",
                    f"{name!r} would have more than {MAX_INSTANCE_TAGS} tags",
                )
        instances.add_instance_tags(conn, names, tags)
    return {}


def remove_tags_from_on_premises_instances(call: Call) -> Json:
    tags, names = _tag_request(call.body, need_values=False)
    with call.services.db.tx() as conn:
        _require_registered(conn, names)
        instances.remove_instance_tags(conn, names, tags)
    return {}


def shipyard_issue_instance_credentials(call: Call) -> Json:
    """Issue the access keys an instance's agent signs with, revoking earlier ones."""
    name = _required_name(call.body)
    with call.services.db.tx() as conn:
        info = instances.get_instance(conn, name)
        if info is None or not instances.is_registered(conn, name):
            raise ApiError("InstanceNotRegisteredException", f"{name!r} is not registered")
        credentials.revoke_principal(conn, "instance", name)
        key_id, secret = credentials.issue(
            conn, call.services.db.secret_box, "instance", name, call.now()
        )
    host_identifier = info.get("iamSessionArn") or info["iamUserArn"]
    return {"accessKeyId": key_id, "secretAccessKey": secret, "hostIdentifier": host_identifier}


def shipyard_list_instance_status(call: Call) -> Json:
    """Shipyard extension: each registered instance's agent state and deployed revisions.

    ``agentState`` is ``never-connected`` (no poll yet), ``silent`` (no poll for the
    server's agent timeout) or ``connected``.
    """
    with call.services.db.tx() as conn:
        fleet = instances.fleet_status(conn)
    silent_after = call.services.config.agent_timeout
    now = call.now()
    for entry in fleet:
        seen = entry["lastSeen"]
        entry["agentState"] = (
            "never-connected"
            if seen is None
            else "silent"
            if now - seen > silent_after
            else "connected"
        )
    return {"instances": fleet, "agentTimeout": silent_after}


OPERATIONS: dict[str, Handler] = {
    "RegisterOnPremisesInstance": register_on_premises_instance,
    "DeregisterOnPremisesInstance": deregister_on_premises_instance,
    "GetOnPremisesInstance": get_on_premises_instance,
    "BatchGetOnPremisesInstances": batch_get_on_premises_instances,
    "ListOnPremisesInstances": list_on_premises_instances,
    "AddTagsToOnPremisesInstances": add_tags_to_on_premises_instances,
    "RemoveTagsFromOnPremisesInstances": remove_tags_from_on_premises_instances,
    "ShipyardIssueInstanceCredentials": shipyard_issue_instance_credentials,
    "ShipyardListInstanceStatus": shipyard_list_instance_status,
}
