"""Validation of a RevisionLocation for the Server platform."""

from __future__ import annotations

import re
from typing import Any

from shipyard.errors import ApiError
from shipyard.server.bundle_urls import head_bundle
from shipyard.server.context import Services

BUNDLE_TYPES = ("tar", "tgz", "zip")
REPOSITORY_RE = re.compile(r"[^/\s]+/[^/\s]+")


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidRevisionException", message)


def checked(services: Services, revision: Any) -> dict[str, Any]:
    """The revision, validated; for the built-in store also checked to exist."""
    if not isinstance(revision, dict):
        raise _invalid("revision must be an object")
    kind = revision.get("revisionType")
    if kind == "S3":
        loc = revision.get("s3Location")
        if not isinstance(loc, dict) or not loc.get("bucket") or not loc.get("key"):
            raise _invalid("An S3 revision needs s3Location with bucket and key")
        bundle_type = loc.get("bundleType")
        if bundle_type not in BUNDLE_TYPES:
            raise _invalid(
                f"bundleType must be one of {', '.join(BUNDLE_TYPES)} for servers; "
                f"got {bundle_type!r}"
            )
        # Only the built-in store is checked: an external one may be slow or unreachable.
        if not services.config.s3_endpoint and head_bundle(services, loc) is None:
            raise ApiError(
                "RevisionDoesNotExistException",
                f"No bundle at s3://{loc['bucket']}/{loc['key']}"
                + (f" version {loc['version']}" if loc.get("version") else ""),
            )
        return {"revisionType": "S3", "s3Location": dict(loc)}
    if kind == "GitHub":
        loc = revision.get("gitHubLocation")
        if not isinstance(loc, dict) or not loc.get("commitId"):
            raise _invalid("A GitHub revision needs gitHubLocation with repository and commitId")
        if not REPOSITORY_RE.fullmatch(str(loc.get("repository", ""))):
            raise _invalid("gitHubLocation.repository must look like account/repository")
        return {"revisionType": "GitHub", "gitHubLocation": dict(loc)}
    if kind in ("String", "AppSpecContent"):
        raise _invalid(f"revisionType {kind} is for Lambda and ECS, not servers")
    raise _invalid(f"revisionType must be S3 or GitHub; got {kind!r}")
