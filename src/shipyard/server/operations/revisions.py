"""Application revisions: register, get, batch get and list (with its filters and sorts)."""

from __future__ import annotations

from typing import Any

from shipyard.errors import ApiError
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations import members
from shipyard.store import revisions

BATCH_LIMIT = 25
MAX_DESCRIPTION = 256
MAX_KEY_PREFIX = 1024


def _revision(body: dict[str, Any], *, need_content: bool) -> dict[str, Any]:
    value = validate.required(body, "revision", "RevisionRequiredException")
    return members.revision_location(value, need_content=need_content)


def register_application_revision(call: Call) -> Json:
    app = members.application_name(call.body)
    revision = _revision(call.body, need_content=True)
    description = call.body.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION
    ):
        raise ApiError(
            "DescriptionTooLongException",
            f"description must be a string of at most {MAX_DESCRIPTION} characters",
        )
    with call.services.db.tx() as conn:
        info = members.require_application(conn, app)
        members.check_revision_platform(revision, info["computePlatform"])
        revisions.register_revision(conn, app, revision, description, call.now())
    return {}


def get_application_revision(call: Call) -> Json:
    app = members.application_name(call.body)
    revision = _revision(call.body, need_content=False)
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        found = revisions.get_revision(conn, app, revision)
    if found is None:
        raise ApiError("RevisionDoesNotExistException", "No such revision is registered")
    return {"applicationName": app, **found}


def batch_get_application_revisions(call: Call) -> Json:
    app = members.application_name(call.body)
    items = validate.required(call.body, "revisions", "RevisionRequiredException")
    items = members.array(items, "InvalidRevisionException", "revisions")
    if len(items) > BATCH_LIMIT:
        raise ApiError("BatchLimitExceededException", f"at most {BATCH_LIMIT} revisions per call")
    wanted = [members.revision_location(item, need_content=False) for item in items]
    found: list[Json] = []
    missing = 0
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        for revision in wanted:
            result = revisions.get_revision(conn, app, revision)
            if result is None:
                missing += 1
                continue
            found.append(
                {
                    "revisionLocation": result["revision"],
                    "genericRevisionInfo": result["revisionInfo"],
                }
            )
    response: Json = {"applicationName": app, "revisions": found}
    if missing:
        response["errorMessage"] = f"{missing} of the requested revisions are not registered"
    return response


def list_application_revisions(call: Call) -> Json:
    body = call.body
    app = members.application_name(body)
    sort_by = body.get("sortBy")
    if sort_by is not None:
        sort_by = validate.enum(
            sort_by,
            ("registerTime", "firstUsedTime", "lastUsedTime"),
            "InvalidSortByException",
            "sortBy",
        )
    sort_order = validate.enum(
        body.get("sortOrder") or "ascending",
        ("ascending", "descending"),
        "InvalidSortOrderException",
        "sortOrder",
    )
    deployed = validate.enum(
        body.get("deployed") or "ignore",
        ("include", "exclude", "ignore"),
        "InvalidDeployedStateFilterException",
        "deployed",
    )
    bucket = body.get("s3Bucket")
    if bucket is not None:
        bucket = members.s3_bucket_filter(bucket)
    prefix = body.get("s3KeyPrefix")
    if prefix is not None:
        if bucket is None:
            raise ApiError("BucketNameFilterRequiredException", "s3KeyPrefix needs s3Bucket")
        members.text(prefix, "InvalidKeyPrefixFilterException", "s3KeyPrefix", MAX_KEY_PREFIX, 0)
    with call.services.db.tx() as conn:
        members.require_application(conn, app)
        found = revisions.list_revisions(
            conn,
            app,
            sort_by=sort_by,
            descending=sort_order == "descending",
            s3_bucket=bucket,
            s3_key_prefix=prefix,
            deployed=deployed,
        )
    return members.page("revisions", found, body.get("nextToken"))


OPERATIONS: dict[str, Handler] = {
    "RegisterApplicationRevision": register_application_revision,
    "GetApplicationRevision": get_application_revision,
    "BatchGetApplicationRevisions": batch_get_application_revisions,
    "ListApplicationRevisions": list_application_revisions,
}
