"""Application revisions: registered RevisionLocations and when they were used.

A revision is identified by what names its content, not by every member given:
S3 by bucket, key and object version (``bundleType`` and ``eTag`` describe or check
the object, so registering again updates them); GitHub by repository and commit;
String and AppSpecContent by the SHA-256 of the content (clients look these up by
``sha256`` alone, because GetDeployment never returns the content).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema
from shipyard.store.dialects import for_update
from shipyard.store.groups import deployment_groups_of

_t = schema.revisions
_c = _t.c

# RevisionLocation member holding the location of each revisionType.
LOCATION_MEMBER = {
    "S3": "s3Location",
    "GitHub": "gitHubLocation",
    "String": "string",
    "AppSpecContent": "appSpecContent",
}


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def revision_key(revision: dict[str, Any]) -> str:
    """Canonical identity of a RevisionLocation (see the module docstring)."""
    kind = revision.get("revisionType")
    location = revision.get(LOCATION_MEMBER.get(str(kind), "")) or {}
    identity: dict[str, Any]
    if kind == "S3":
        identity = {k: location.get(k) for k in ("bucket", "key", "version")}
    elif kind == "GitHub":
        identity = {k: location.get(k) for k in ("repository", "commitId")}
    else:
        digest = location.get("sha256")
        if not digest and isinstance(location.get("content"), str):
            digest = content_sha256(location["content"])
        identity = {"sha256": str(digest or "").lower()}
    return json.dumps(
        {"revisionType": kind, **identity},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _key(app: str, revision: dict[str, Any]) -> Any:
    return (_c.application_name == app) & (_c.revision_key == revision_key(revision))


def _locked_row(conn: Connection, app: str, revision: dict[str, Any]) -> Any:
    query = select(_c.first_used_time, _c.doc).where(_key(app, revision))
    return conn.execute(for_update(query, conn.dialect.name)).first()


def register_revision(
    conn: Connection, app: str, revision: dict[str, Any], description: str | None, now: float
) -> None:
    """Register a revision, or refresh the location members and description of a known one."""
    row = _locked_row(conn, app, revision)
    if row is None:
        conn.execute(
            _t.insert().values(
                application_name=app,
                revision_key=revision_key(revision),
                register_time=now,
                doc={"revision": revision, "description": description},
            )
        )
        return
    doc = {"revision": revision, "description": description or row.doc.get("description")}
    conn.execute(_t.update().where(_key(app, revision)).values(doc=doc))


def record_revision_use(conn: Connection, app: str, revision: dict[str, Any], now: float) -> None:
    """A deployment used this revision: register it if new, set first/last used times."""
    row = _locked_row(conn, app, revision)
    if row is None:
        conn.execute(
            _t.insert().values(
                application_name=app,
                revision_key=revision_key(revision),
                register_time=now,
                first_used_time=now,
                last_used_time=now,
                doc={"revision": revision, "description": None},
            )
        )
        return
    first_used = row.first_used_time if row.first_used_time is not None else now
    conn.execute(
        _t.update()
        .where(_key(app, revision))
        .values(first_used_time=first_used, last_used_time=now)
    )


def _target_keys(conn: Connection, app: str) -> dict[str, list[str]]:
    """revision key -> names of the groups whose targetRevision it is."""
    targets: dict[str, list[str]] = {}
    for group in deployment_groups_of(conn, app):
        target = group.get("targetRevision")
        if target:
            targets.setdefault(revision_key(target), []).append(group["deploymentGroupName"])
    return targets


def _info(row: Any, groups: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {"deploymentGroups": groups, "registerTime": row.register_time}
    if row.doc.get("description") is not None:
        info["description"] = row.doc["description"]
    if row.first_used_time is not None:
        info["firstUsedTime"] = row.first_used_time
    if row.last_used_time is not None:
        info["lastUsedTime"] = row.last_used_time
    return info


_COLUMNS = (_c.revision_key, _c.register_time, _c.first_used_time, _c.last_used_time, _c.doc)


def get_revision(conn: Connection, app: str, revision: dict[str, Any]) -> dict[str, Any] | None:
    """``{"revision": <stored location>, "revisionInfo": GenericRevisionInfo}`` or None."""
    row = conn.execute(select(*_COLUMNS).where(_key(app, revision))).first()
    if row is None:
        return None
    groups = _target_keys(conn, app).get(row.revision_key, [])
    return {"revision": row.doc["revision"], "revisionInfo": _info(row, groups)}


_SORT_COLUMNS = {
    "registerTime": "register_time",
    "firstUsedTime": "first_used_time",
    "lastUsedTime": "last_used_time",
}


def list_revisions(
    conn: Connection,
    app: str,
    *,
    sort_by: str | None = None,
    descending: bool = False,
    s3_bucket: str | None = None,
    s3_key_prefix: str | None = None,
    deployed: str = "ignore",
) -> list[dict[str, Any]]:
    """RevisionLocations of an application, filtered and sorted as ListApplicationRevisions.

    ``deployed`` is include / exclude / ignore: whether to keep only, drop, or not care
    about revisions that are some group's target revision. Never-used revisions sort
    as time 0 under firstUsedTime / lastUsedTime. Without ``sort_by`` the order is
    registration order.
    """
    rows = list(
        conn.execute(
            select(*_COLUMNS)
            .where(_c.application_name == app)
            .order_by(_c.register_time, _c.revision_key)
        )
    )
    targets = _target_keys(conn, app)
    if deployed == "include":
        rows = [row for row in rows if row.revision_key in targets]
    elif deployed == "exclude":
        rows = [row for row in rows if row.revision_key not in targets]
    if s3_bucket is not None:
        rows = [row for row in rows if _in_bucket(row.doc["revision"], s3_bucket, s3_key_prefix)]
    if sort_by is not None:
        column = _SORT_COLUMNS[sort_by]
        rows.sort(key=lambda row: getattr(row, column) or 0.0, reverse=descending)
    elif descending:
        rows.reverse()
    return [row.doc["revision"] for row in rows]


def _in_bucket(revision: dict[str, Any], bucket: str, key_prefix: str | None) -> bool:
    if revision.get("revisionType") != "S3":
        return False
    location = revision.get("s3Location") or {}
    return location.get("bucket") == bucket and str(location.get("key", "")).startswith(
        key_prefix or ""
    )


def rename_application_in_revisions(conn: Connection, old: str, new: str) -> None:
    conn.execute(_t.update().where(_c.application_name == old).values(application_name=new))


def delete_revisions_of(conn: Connection, app: str) -> None:
    conn.execute(_t.delete().where(_c.application_name == app))
