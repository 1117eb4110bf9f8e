"""The resource store: applications here, and the one import for everything the
engine and the API need from the resource families.

Sibling modules hold the other families (``groups``, ``revisions``, ``configs``,
``instances``, ``tags``); the functions the engine calls are re-exported below so that
``from shipyard.store import resources`` is the whole contract. Every function takes
a SQLAlchemy ``Connection`` first and runs inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import arns, schema
from shipyard.store.configs import get_deployment_config
from shipyard.store.groups import (
    delete_groups_of,
    get_deployment_group,
    rename_application_in_groups,
    update_deployment_group_doc,
)
from shipyard.store.instances import instance_by_arn, instances_for_group
from shipyard.store.revisions import (
    delete_revisions_of,
    record_revision_use,
    rename_application_in_revisions,
)
from shipyard.store.tags import delete_resource_tags, move_resource_tags

__all__ = [
    "delete_application",
    "get_application",
    "get_deployment_config",
    "get_deployment_group",
    "insert_application",
    "instance_by_arn",
    "instances_for_group",
    "list_application_names",
    "record_revision_use",
    "rename_application",
    "update_deployment_group_doc",
]

_t = schema.applications
_c = _t.c


def insert_application(
    conn: Connection, *, name: str, application_id: str, compute_platform: str, now: float
) -> dict[str, Any]:
    """Store a new application; returns its ApplicationInfo."""
    conn.execute(
        _t.insert().values(
            name=name,
            id=application_id,
            compute_platform=compute_platform,
            create_time=now,
            doc={"linkedToGitHub": False},
        )
    )
    return {
        "applicationId": application_id,
        "applicationName": name,
        "createTime": now,
        "linkedToGitHub": False,
        "computePlatform": compute_platform,
    }


def get_application(conn: Connection, name: str) -> dict[str, Any] | None:
    """ApplicationInfo, or None."""
    row = conn.execute(
        select(_c.id, _c.compute_platform, _c.create_time, _c.doc).where(_c.name == name)
    ).first()
    if row is None:
        return None
    return {
        "applicationId": row.id,
        "applicationName": name,
        "createTime": row.create_time,
        "linkedToGitHub": bool(row.doc.get("linkedToGitHub", False)),
        "computePlatform": row.compute_platform,
    }


def list_application_names(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(select(_c.name).order_by(_c.name))]


def rename_application(conn: Connection, old: str, new: str, region: str) -> None:
    """Rename an application with its groups, deployments, revisions and tags (their
    ARNs hold the name)."""
    conn.execute(_t.update().where(_c.name == old).values(name=new))
    move_resource_tags(conn, arns.application_arn(region, old), arns.application_arn(region, new))
    for group in rename_application_in_groups(conn, old, new):
        move_resource_tags(
            conn,
            arns.deployment_group_arn(region, old, group),
            arns.deployment_group_arn(region, new, group),
        )
    rename_application_in_revisions(conn, old, new)


def delete_application(conn: Connection, name: str, region: str) -> None:
    """Delete an application with its groups, revisions and tags."""
    for group in delete_groups_of(conn, name):
        delete_resource_tags(conn, arns.deployment_group_arn(region, name, group))
    delete_revisions_of(conn, name)
    delete_resource_tags(conn, arns.application_arn(region, name))
    conn.execute(_t.delete().where(_c.name == name))
