"""TagResource, UntagResource and ListTagsForResource on application, deployment group
and custom deployment config ARNs (members are capitalised in these three operations).

An ARN must name this server's region and account. Predefined configs and instances
cannot be tagged this way (instances have their own tag operations).
"""

from __future__ import annotations

from sqlalchemy import Connection

from shipyard.errors import ApiError
from shipyard.model import ACCOUNT_ID
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import members
from shipyard.store import arns, configs, groups, tags

MAX_ARN_LENGTH = 1011
_TAGGABLE = (arns.APPLICATION, arns.DEPLOYMENT_GROUP, arns.DEPLOYMENT_CONFIG)


def _names(parsed: arns.ParsedArn) -> list[str]:
    """The resource names in the ARN: [app], [app, group] or [config]."""
    parts = parsed.resource.split("/")
    expected = 2 if parsed.resource_type == arns.DEPLOYMENT_GROUP else 1
    if len(parts) != expected or not all(validate.NAME_RE.fullmatch(part) for part in parts):
        raise ApiError("InvalidArnException", f"malformed {parsed.resource_type} ARN")
    return parts


def _resource(call: Call) -> tuple[arns.ParsedArn, list[str], str]:
    """(parsed ARN, resource names, canonical ARN) of the request's ResourceArn."""
    raw = validate.required(call.body, "ResourceArn", "ResourceArnRequiredException")
    if not isinstance(raw, str) or len(raw) > MAX_ARN_LENGTH:
        raise ApiError("InvalidArnException", "ResourceArn must be a string of 1-1011 characters")
    try:
        parsed = arns.parse_arn(raw)
    except arns.ArnError as exc:
        raise ApiError("InvalidArnException", str(exc)) from None
    region = call.services.config.region
    if parsed.service != "codedeploy" or parsed.resource_type not in _TAGGABLE:
        raise ApiError("ArnNotSupportedException", f"cannot tag {raw}")
    if parsed.region != region or parsed.account != ACCOUNT_ID:
        raise ApiError(
            "ArnNotSupportedException",
            f"{raw} is not in this server's region ({region}) and account ({ACCOUNT_ID})",
        )
    names = _names(parsed)
    if parsed.resource_type == arns.APPLICATION:
        canonical = arns.application_arn(region, names[0])
    elif parsed.resource_type == arns.DEPLOYMENT_GROUP:
        canonical = arns.deployment_group_arn(region, names[0], names[1])
    else:
        canonical = arns.deployment_config_arn(region, names[0])
    return parsed, names, canonical


def _require_resource(conn: Connection, parsed: arns.ParsedArn, names: list[str]) -> None:
    if parsed.resource_type == arns.APPLICATION:
        members.require_application(conn, names[0])
    elif parsed.resource_type == arns.DEPLOYMENT_GROUP:
        members.require_application(conn, names[0])
        if groups.get_deployment_group(conn, names[0], names[1]) is None:
            raise ApiError(
                "DeploymentGroupDoesNotExistException", f"No deployment group {names[1]!r}"
            )
    elif configs.is_predefined(names[0]):
        raise ApiError("ArnNotSupportedException", "predefined configs cannot be tagged")
    elif configs.get_deployment_config(conn, names[0]) is None:
        raise ApiError("DeploymentConfigDoesNotExistException", f"No config {names[0]!r}")


def tag_resource(call: Call) -> Json:
    parsed, names, arn = _resource(call)
    raw = validate.required(call.body, "Tags", "TagRequiredException")
    new_tags = members.resource_tags(raw, "InvalidTagsToAddException")
    with call.services.db.tx() as conn:
        _require_resource(conn, parsed, names)
        keys = {tag["Key"] for tag in new_tags}
        if tags.count_resource_tags(conn, arn, keys) > members.MAX_RESOURCE_TAGS:
            raise ApiError(
                "InvalidTagsToAddException",
                f"a resource has at most {members.MAX_RESOURCE_TAGS} tags",
            )
        tags.put_resource_tags(conn, arn, new_tags)
    return {}


def untag_resource(call: Call) -> Json:
    parsed, names, arn = _resource(call)
    raw = validate.required(call.body, "TagKeys", "TagRequiredException")
    keys = validate.string_list(raw, "InvalidTagsToAddException", "TagKeys")
    with call.services.db.tx() as conn:
        _require_resource(conn, parsed, names)
        tags.remove_resource_tags(conn, arn, keys)
    return {}


def list_tags_for_resource(call: Call) -> Json:
    """Tags of the resource; an ARN of a resource that does not exist has none (the
    model gives this operation no DoesNotExist error). A resource has at most 50 tags,
    so one page holds them all and NextToken is never returned."""
    _, _, arn = _resource(call)
    with call.services.db.tx() as conn:
        return {"Tags": tags.resource_tags(conn, arn)}


OPERATIONS: dict[str, Handler] = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
