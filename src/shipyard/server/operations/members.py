"""Request members several operation families share: names, tags, tag filters, bounded
integers and RevisionLocations, plus lookups that fail with the model's exceptions.

Each helper takes the raw JSON value and the exception name to raise, and returns the
value normalised (only known members, nulls dropped), ready to store.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

from shipyard.errors import ApiError
from shipyard.server import validate
from shipyard.server.context import Json
from shipyard.store import resources
from shipyard.store.revisions import LOCATION_MEMBER, content_sha256

TAG_FILTER_TYPES = ("KEY_ONLY", "VALUE_ONLY", "KEY_AND_VALUE")
BUNDLE_TYPES = ("tar", "tgz", "zip", "YAML", "JSON")
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_RESOURCE_TAGS = 50
MAX_TAG_GROUPS = 3
MAX_FILTERS_PER_LIST = 10

_REPOSITORY_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,64}")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
_BUCKET_RE = re.compile(r"[A-Za-z0-9._-]{3,63}")

# Which compute platforms can deploy each kind of revision.
_REVISION_PLATFORMS = {
    "S3": ("Server", "Lambda", "ECS"),
    "GitHub": ("Server",),
    "String": ("Lambda",),
    "AppSpecContent": ("Lambda", "ECS"),
}


def page(member: str, items: list[Any], token: Any) -> Json:
    """A List* response: one page of ``items`` under ``member``, plus nextToken if more."""
    chunk, next_token = validate.paginate(items, token)
    result: Json = {member: chunk}
    if next_token is not None:
        result["nextToken"] = next_token
    return result


def application_name(body: dict[str, Any], member: str = "applicationName") -> str:
    value = validate.required(body, member, "ApplicationNameRequiredException")
    return validate.name(value, "InvalidApplicationNameException", member)


def require_application(conn: Connection, name: str) -> dict[str, Any]:
    info = resources.get_application(conn, name)
    if info is None:
        raise ApiError("ApplicationDoesNotExistException", f"Application {name!r} does not exist")
    return info


def integer(
    value: Any, exception: str, what: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(exception, f"{what} must be an integer")
    if minimum is not None and value < minimum:
        raise ApiError(exception, f"{what} must be at least {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ApiError(exception, f"{what} must be at most {maximum}; got {value}")
    return value


def text(value: Any, exception: str, what: str, max_length: int, min_length: int = 1) -> str:
    if not isinstance(value, str) or not min_length <= len(value) <= max_length:
        raise ApiError(
            exception, f"{what} must be a string of {min_length}-{max_length} characters"
        )
    return value


def structure(value: Any, exception: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(exception, f"{what} must be an object")
    return value


def array(value: Any, exception: str, what: str, maximum: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise ApiError(exception, f"{what} must be a list")
    if maximum is not None and len(value) > maximum:
        raise ApiError(exception, f"{what} holds at most {maximum} entries; got {len(value)}")
    return value


def resource_tags(value: Any, exception: str) -> list[dict[str, str]]:
    """A TagList for ARN resources: at most 50 keys; Key 1-128 characters, Value up to 256
    (may be empty)."""
    tags = []
    for tag in array(value, exception, "tags"):
        tag = structure(tag, exception, "a tag")
        key = text(tag.get("Key"), exception, "a tag Key", MAX_TAG_KEY)
        tag_value = text(tag.get("Value", ""), exception, "a tag Value", MAX_TAG_VALUE, 0)
        tags.append({"Key": key, "Value": tag_value})
    if len({tag["Key"] for tag in tags}) > MAX_RESOURCE_TAGS:
        raise ApiError(exception, f"a resource has at most {MAX_RESOURCE_TAGS} tags")
    return tags


def tag_filter(value: Any, exception: str) -> dict[str, str]:
    """One TagFilter / EC2TagFilter; its Type needs the members it names."""
    item = structure(value, exception, "a tag filter")
    result: dict[str, str] = {}
    if item.get("Key") is not None:
        result["Key"] = text(item["Key"], exception, "a tag filter Key", MAX_TAG_KEY)
    if item.get("Value") is not None:
        result["Value"] = text(item["Value"], exception, "a tag filter Value", MAX_TAG_VALUE, 0)
    kind = item.get("Type")
    if kind is not None:
        result["Type"] = validate.enum(kind, TAG_FILTER_TYPES, exception, "tag filter Type")
    needs_key = kind in ("KEY_ONLY", "KEY_AND_VALUE")
    needs_value = kind in ("VALUE_ONLY", "KEY_AND_VALUE")
    if (needs_key and "Key" not in result) or (needs_value and "Value" not in result):
        raise ApiError(exception, f"a {kind} tag filter needs its Key and/or Value")
    if "Key" not in result and "Value" not in result:
        raise ApiError(exception, "a tag filter needs a Key or a Value")
    return result


def tag_filters(value: Any, exception: str, what: str) -> list[dict[str, str]]:
    items = array(value, exception, what, MAX_FILTERS_PER_LIST)
    return [tag_filter(item, exception) for item in items]


def tag_set(value: Any, list_member: str, exception: str) -> dict[str, list[list[dict[str, str]]]]:
    """An EC2TagSet / OnPremisesTagSet: at most three lists of filters."""
    item = structure(value, exception, "a tag set")
    lists = array(item.get(list_member) or [], exception, list_member)
    if len(lists) > MAX_TAG_GROUPS:
        raise ApiError(
            "TagSetListLimitExceededException",
            f"{list_member} holds at most {MAX_TAG_GROUPS} tag groups; got {len(lists)}",
        )
    return {list_member: [tag_filters(group, exception, "a tag group") for group in lists]}


def _location(revision: dict[str, Any], kind: str) -> dict[str, Any]:
    member = LOCATION_MEMBER[kind]
    return structure(revision.get(member), "InvalidRevisionException", member)


def _optional_str(location: dict[str, Any], member: str, max_length: int) -> dict[str, str]:
    if location.get(member) is None:
        return {}
    return {member: text(location[member], "InvalidRevisionException", member, max_length)}


def revision_location(value: Any, *, need_content: bool = True) -> dict[str, Any]:
    """A RevisionLocation, normalised to revisionType plus that type's location.

    ``need_content=False`` accepts String / AppSpecContent identified by sha256 alone
    (lookups); registering needs the content.
    """
    error = "InvalidRevisionException"
    revision = structure(value, error, "revision")
    kind = validate.enum(revision.get("revisionType"), LOCATION_MEMBER, error, "revisionType")
    location = _location(revision, kind)
    result: dict[str, Any]
    if kind == "S3":
        result = {
            "bucket": text(location.get("bucket"), error, "s3Location.bucket", 255),
            "key": text(location.get("key"), error, "s3Location.key", 1024),
        }
        if location.get("bundleType") is not None:
            bundle = location["bundleType"]
            result["bundleType"] = validate.enum(bundle, BUNDLE_TYPES, error, "bundleType")
        result |= _optional_str(location, "version", 1024) | _optional_str(location, "eTag", 256)
    elif kind == "GitHub":
        repository = text(location.get("repository"), error, "gitHubLocation.repository", 256)
        commit = text(location.get("commitId"), error, "gitHubLocation.commitId", 64)
        if not _REPOSITORY_RE.fullmatch(repository):
            raise ApiError(error, f"repository must look like account/repository: {repository!r}")
        if not _COMMIT_RE.fullmatch(commit):
            raise ApiError(error, f"commitId must be a hexadecimal commit ID: {commit!r}")
        result = {"repository": repository, "commitId": commit}
    else:
        result = _content(location, need_content)
    return {"revisionType": kind, LOCATION_MEMBER[kind]: result}


def _content(location: dict[str, Any], need_content: bool) -> dict[str, str]:
    error = "InvalidRevisionException"
    result: dict[str, str] = {}
    digest = location.get("sha256")
    if digest is not None:
        if not isinstance(digest, str) or not _SHA256_RE.fullmatch(digest):
            raise ApiError(error, "sha256 must be 64 hexadecimal characters")
        result["sha256"] = digest.lower()
    content = location.get("content")
    if content is None:
        if need_content or digest is None:
            raise ApiError(error, "the revision's content is required")
        return result
    if not isinstance(content, str) or not content:
        raise ApiError(error, "content must be a non-empty string")
    actual = content_sha256(content)
    if digest is not None and result["sha256"] != actual:
        raise ApiError(error, "sha256 does not match the SHA-256 of the content")
    return {"content": content, "sha256": actual}


def check_revision_platform(revision: dict[str, Any], platform: str) -> None:
    """GitHub revisions are for Server, String for Lambda, AppSpecContent for Lambda/ECS."""
    allowed = _REVISION_PLATFORMS[revision["revisionType"]]
    if platform not in allowed:
        raise ApiError(
            "InvalidRevisionException",
            f"{revision['revisionType']} revisions cannot be used by {platform} applications",
        )


def s3_bucket_filter(value: Any) -> str:
    if not isinstance(value, str) or not _BUCKET_RE.fullmatch(value):
        raise ApiError("InvalidBucketNameFilterException", f"not a valid bucket name: {value!r}")
    return value
