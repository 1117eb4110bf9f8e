"""Who may do what in the built-in bundle store: the one check every S3 request passes.

- Admin keys: everything.
- The server's internal ``bundle-reader`` key (it signs the URLs agents GET): read
  objects (the URL's signature already pins the object).
- Instance keys (agents; the stock CodeDeploy agent downloads with its own S3 client):
  read the revision bundle of a deployment in progress that targets their instance, at
  the version that deployment names, and nothing else: no listing, no writes, no other
  object. A stolen instance key gives the bundles that host is being sent anyway.
- User keys (people, server/permissions.py): a viewer reads and lists; a deployer also
  writes objects (PutObject, multipart uploads, deletes: pushing revisions); creating or
  deleting buckets needs admin.
- Any other kind of key: nothing.
"""

from __future__ import annotations

from typing import Any

from shipyard.bundlestore.disk import S3Error
from shipyard.server import permissions
from shipyard.server.context import Principal, Services
from shipyard.store import deployments

FULL_ACCESS = frozenset({"admin"})
READ_ANY_OBJECT = frozenset({"internal"})
READ_OWN_BUNDLES = frozenset({"instance"})


def authorize(
    services: Services,
    principal: Principal,
    method: str,
    bucket: str,
    key: str,
    query: dict[str, str],
) -> None:
    """Return if ``principal`` may make this request; AccessDenied (403) otherwise."""
    if principal.kind in FULL_ACCESS:
        return
    if principal.kind == "user":
        _authorize_user(principal, method, bucket, key)
        return
    reads_object = bool(bucket and key) and method in ("GET", "HEAD")
    reads_object = reads_object and not {"uploadId", "uploads"} & query.keys()
    if reads_object and principal.kind in READ_ANY_OBJECT:
        return
    if reads_object and principal.kind in READ_OWN_BUNDLES:
        with services.db.tx() as conn:
            revisions = deployments.active_revisions_of(conn, principal.name)
        if any(_names(r, bucket, key, query.get("versionId")) for r in revisions):
            return
    raise S3Error("AccessDenied", "Access Denied", 403)


def _authorize_user(principal: Principal, method: str, bucket: str, key: str) -> None:
    if method in ("GET", "HEAD"):
        needed = permissions.READ
    elif bucket and key:
        needed = permissions.PUSH_BUNDLE
    else:
        needed = "s3:ManageBuckets"  # in no role's table: admin only
    if not permissions.allowed(principal, needed):
        raise S3Error("AccessDenied", permissions.denial(principal, needed), 403)


def _names(revision: dict[str, Any], bucket: str, key: str, version: str | None) -> bool:
    """Whether ``revision`` is this object at this version (an unpinned revision: the
    latest version, asked for without a versionId)."""
    if revision.get("revisionType") != "S3":
        return False
    location = revision.get("s3Location") or {}
    return (
        location.get("bucket") == bucket
        and location.get("key") == key
        and (location.get("version") or None) == version
    )
