"""Applications (create, get, batch get, list, rename, delete) and the account-level
odds and ends: GitHub token stubs and DeleteResourcesByExternalId.

Shipyard has no GitHub connections (GitHub revisions are cloned from the configured
git base URL), so the token list is always empty.
"""

from __future__ import annotations

from shipyard.errors import ApiError
from shipyard.model import ComputePlatform, new_uuid
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import members
from shipyard.store import arns, resources, tags

BATCH_LIMIT = 100


def create_application(call: Call) -> Json:
    name = members.application_name(call.body)
    platform = call.body.get("computePlatform")
    platform = validate.enum(
        "Server" if platform is None else platform,
        [p.value for p in ComputePlatform],
        "InvalidComputePlatformException",
        "computePlatform",
    )
    new_tags = members.resource_tags(call.body.get("tags") or [], "InvalidTagsToAddException")
    with call.services.db.tx() as conn:
        if resources.get_application(conn, name) is not None:
            raise ApiError("ApplicationAlreadyExistsException", f"Application {name!r} exists")
        info = resources.insert_application(
            conn, name=name, application_id=new_uuid(), compute_platform=platform, now=call.now()
        )
        arn = arns.application_arn(call.services.config.region, name)
        tags.put_resource_tags(conn, arn, new_tags)
    return {"applicationId": info["applicationId"]}


def get_application(call: Call) -> Json:
    name = members.application_name(call.body)
    with call.services.db.tx() as conn:
        return {"application": members.require_application(conn, name)}


def batch_get_applications(call: Call) -> Json:
    if call.body.get("applicationNames") is None:
        raise ApiError("ApplicationNameRequiredException", "applicationNames is required")
    names = validate.batch(
        call.body["applicationNames"],
        BATCH_LIMIT,
        "InvalidApplicationNameException",
        "BatchLimitExceededException",
        "applicationNames",
    )
    unique = list(dict.fromkeys(names))
    for name in unique:
        validate.name(name, "InvalidApplicationNameException", "applicationName")
    with call.services.db.tx() as conn:
        return {"applicationsInfo": [members.require_application(conn, n) for n in unique]}


def list_applications(call: Call) -> Json:
    with call.services.db.tx() as conn:
        names = resources.list_application_names(conn)
    return members.page("applications", names, call.body.get("nextToken"))


def update_application(call: Call) -> Json:
    old = members.application_name(call.body)
    new = members.application_name(call.body, "newApplicationName")
    with call.services.db.tx() as conn:
        members.require_application(conn, old)
        if new == old:
            return {}
        if resources.get_application(conn, new) is not None:
            raise ApiError("ApplicationAlreadyExistsException", f"Application {new!r} exists")
        resources.rename_application(conn, old, new, call.services.config.region)
    return {}


def delete_application(call: Call) -> Json:
    """Deletes the application's groups and revisions too; deleting a missing one is a
    no-op, as the model has no ApplicationDoesNotExist error for this operation."""
    name = members.application_name(call.body)
    with call.services.db.tx() as conn:
        resources.delete_application(conn, name, call.services.config.region)
    return {}


def list_github_account_token_names(call: Call) -> Json:
    return members.page("tokenNameList", [], call.body.get("nextToken"))


def delete_github_account_token(call: Call) -> Json:
    token = validate.required(call.body, "tokenName", "GitHubAccountTokenNameRequiredException")
    members.text(token, "InvalidGitHubAccountTokenNameException", "tokenName", 100)
    raise ApiError("GitHubAccountTokenDoesNotExistException", f"No GitHub token named {token!r}")


def delete_resources_by_external_id(call: Call) -> Json:
    """Nothing in Shipyard is created under an external (CloudFormation) id: a no-op."""
    return {}


OPERATIONS: dict[str, Handler] = {
    "CreateApplication": create_application,
    "GetApplication": get_application,
    "BatchGetApplications": batch_get_applications,
    "ListApplications": list_applications,
    "UpdateApplication": update_application,
    "DeleteApplication": delete_application,
    "ListGitHubAccountTokenNames": list_github_account_token_names,
    "DeleteGitHubAccountToken": delete_github_account_token,
    "DeleteResourcesByExternalId": delete_resources_by_external_id,
}
