"""Deployment groups: one row per (application, group) holding its deploymentGroupInfo.

The ``doc`` column is the complete deploymentGroupInfo as GetDeploymentGroup returns
it; the engine merges run-time members (targetRevision, lastSuccessfulDeployment,
lastAttemptedDeployment) into it with ``update_deployment_group_doc``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from shipyard.store import direct, schema
from shipyard.store.dialects import for_update
from shipyard.store.quick_reads import json_value

_t = schema.deployment_groups
_c = _t.c


def _key(application: str, name: str) -> Any:
    return (_c.application_name == application) & (_c.name == name)


def insert_deployment_group(conn: Connection, info: dict[str, Any]) -> None:
    """Store a new group; ``info`` is its complete deploymentGroupInfo."""
    conn.execute(
        _t.insert().values(
            application_name=info["applicationName"],
            name=info["deploymentGroupName"],
            id=info["deploymentGroupId"],
            doc=info,
        )
    )


def get_deployment_group(conn: Connection, app: str, name: str) -> dict[str, Any] | None:
    """deploymentGroupInfo of one group, or None."""
    row = conn.execute(select(_c.doc).where(_key(app, name))).first()
    return dict(row[0]) if row else None


# Read in every transaction that queues notices (notify.Notices): built once and run on
# the driver directly (store/direct), which spares SQLAlchemy's per-statement cost.
_DOC = select(_c.doc).where(
    (_c.application_name == bindparam("app")) & (_c.name == bindparam("name"))
)


def trigger_configurations(conn: Connection, app: str, name: str) -> list[Any] | None:
    """The group's triggerConfigurations (``[]`` when it has none), or None when the
    group is gone."""
    rows = direct.run(conn, _DOC, {"app": app, "name": name})
    if not rows:
        return None
    triggers = json_value(rows[0][0]).get("triggerConfigurations")
    return triggers if isinstance(triggers, list) else []


def deployment_groups_of(conn: Connection, app: str) -> list[dict[str, Any]]:
    """Every group of an application, sorted by name."""
    rows = conn.execute(select(_c.doc).where(_c.application_name == app).order_by(_c.name))
    return [dict(row[0]) for row in rows]


def all_deployment_groups(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(_c.doc).order_by(_c.application_name, _c.name))
    return [dict(row[0]) for row in rows]


def list_deployment_group_names(conn: Connection, app: str) -> list[str]:
    rows = conn.execute(select(_c.name).where(_c.application_name == app).order_by(_c.name))
    return [row[0] for row in rows]


def save_deployment_group(conn: Connection, app: str, name: str, info: dict[str, Any]) -> None:
    """Replace a group's info; a different ``deploymentGroupName`` in it renames the group,
    and its deployments follow (they are filed under the group's name)."""
    new_name = info["deploymentGroupName"]
    conn.execute(_t.update().where(_key(app, name)).values(name=new_name, doc=info))
    if new_name != name:
        d = schema.deployments.c
        conn.execute(
            schema.deployments.update()
            .where((d.application_name == app) & (d.group_name == name))
            .values(group_name=new_name)
        )


def update_deployment_group_doc(
    conn: Connection, app: str, name: str, changes: dict[str, Any]
) -> None:
    """Merge top-level members into a group's info (no-op when the group is gone)."""
    query = for_update(select(_c.doc).where(_key(app, name)), conn.dialect.name)
    row = conn.execute(query).first()
    if row is None:
        return
    conn.execute(_t.update().where(_key(app, name)).values(doc={**row[0], **changes}))


def delete_deployment_group(conn: Connection, app: str, name: str) -> None:
    conn.execute(_t.delete().where(_key(app, name)))


def groups_using_config(conn: Connection, config_name: str) -> list[tuple[str, str]]:
    """(application, group) pairs whose deploymentConfigName is ``config_name``."""
    return [
        (group["applicationName"], group["deploymentGroupName"])
        for group in all_deployment_groups(conn)
        if group.get("deploymentConfigName") == config_name
    ]


def rename_application_in_groups(conn: Connection, old: str, new: str) -> list[str]:
    """Move an application's groups and deployments to its new name; returns the group
    names."""
    groups = deployment_groups_of(conn, old)
    for group in groups:
        conn.execute(
            _t.update()
            .where(_key(old, group["deploymentGroupName"]))
            .values(application_name=new, doc={**group, "applicationName": new})
        )
    d = schema.deployments.c
    conn.execute(
        schema.deployments.update().where(d.application_name == old).values(application_name=new)
    )
    return [group["deploymentGroupName"] for group in groups]


def delete_groups_of(conn: Connection, app: str) -> list[str]:
    """Delete an application's groups; returns the deleted group names."""
    names = list_deployment_group_names(conn, app)
    conn.execute(_t.delete().where(_c.application_name == app))
    return names
