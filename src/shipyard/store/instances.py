"""On-premises instances, their tags, and which instances a deployment group targets.

A deregistered instance keeps its row (GetOnPremisesInstance shows its deregisterTime)
and its IAM ARN stays taken; registering the same *name* again starts a fresh record.

Tag filters follow CodeDeploy: within one filter list an instance matching any filter
is in (OR); in a tag set it must match some filter of every list (AND of ORs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema

_i = schema.instances
_ic = _i.c
_t = schema.instance_tags
_tc = _t.c


def register_instance(
    conn: Connection, *, name: str, arn_member: str, iam_arn: str, instance_arn: str, now: float
) -> None:
    """Register (or re-register a deregistered) instance under ``name``. A re-registered
    instance is a new host as far as its agent goes: not connected, no version yet."""
    doc = {arn_member: iam_arn, "instanceArn": instance_arn}
    values = dict(
        iam_arn=iam_arn, registered=True, register_time=now, deregister_time=None, doc=doc
    )
    values |= dict(last_seen=None, agent_version=None)
    if conn.execute(select(_ic.name).where(_ic.name == name)).first() is None:
        conn.execute(_i.insert().values(name=name, **values))
    else:
        conn.execute(_i.update().where(_ic.name == name).values(**values))
        conn.execute(_t.delete().where(_tc.instance_name == name))


def instance_holding_arn(conn: Connection, iam_arn: str) -> str | None:
    """The instance (registered or not) whose record holds this IAM ARN."""
    row = conn.execute(select(_ic.name).where(_ic.iam_arn == iam_arn)).first()
    return row[0] if row else None


def instance_by_arn(conn: Connection, iam_arn: str) -> str | None:
    """Name of the *registered* instance with this IAM ARN (an agent's HostIdentifier)."""
    row = conn.execute(
        select(_ic.name).where((_ic.iam_arn == iam_arn) & _ic.registered.is_(True))
    ).first()
    return row[0] if row else None


def is_registered(conn: Connection, name: str) -> bool:
    row = conn.execute(select(_ic.registered).where(_ic.name == name)).first()
    return bool(row and row[0])


def get_instance(conn: Connection, name: str) -> dict[str, Any] | None:
    """InstanceInfo, including deregistered instances, or None."""
    row = conn.execute(
        select(_ic.register_time, _ic.deregister_time, _ic.doc).where(_ic.name == name)
    ).first()
    if row is None:
        return None
    info: dict[str, Any] = {"instanceName": name, **row.doc, "registerTime": row.register_time}
    if row.deregister_time is not None:
        info["deregisterTime"] = row.deregister_time
    info["tags"] = [{"Key": k, "Value": v} for k, v in sorted(instance_tags(conn, name).items())]
    return info


def deregister_instance(conn: Connection, name: str, now: float) -> bool:
    """Mark an instance deregistered; False when it was not registered."""
    if not is_registered(conn, name):
        return False
    conn.execute(_i.update().where(_ic.name == name).values(registered=False, deregister_time=now))
    return True


def instance_tags(conn: Connection, name: str) -> dict[str, str]:
    rows = conn.execute(select(_tc.key, _tc.value).where(_tc.instance_name == name))
    return {key: value for key, value in rows}


def _tags_of(conn: Connection, names: Iterable[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {name: {} for name in names}
    for name, key, value in conn.execute(select(_tc.instance_name, _tc.key, _tc.value)):
        if name in tags:
            tags[name][key] = value
    return tags


def add_instance_tags(conn: Connection, names: list[str], tags: list[dict[str, str]]) -> None:
    """Tag instances; an existing key gets the new value."""
    for name in names:
        for tag in tags:
            key_match = (_tc.instance_name == name) & (_tc.key == tag["Key"])
            conn.execute(_t.delete().where(key_match))
            conn.execute(_t.insert().values(instance_name=name, key=tag["Key"], value=tag["Value"]))


def remove_instance_tags(conn: Connection, names: list[str], tags: list[dict[str, str]]) -> None:
    """Remove tags whose key (and value, when one is given) match."""
    for name in names:
        for tag in tags:
            match = (_tc.instance_name == name) & (_tc.key == tag["Key"])
            if tag.get("Value") is not None:
                match = match & (_tc.value == tag["Value"])
            conn.execute(_t.delete().where(match))


def list_instance_names(
    conn: Connection,
    *,
    registration_status: str | None = None,
    tag_filters: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Instance names, sorted, optionally only Registered / Deregistered ones and only
    those matching any of ``tag_filters``."""
    query = select(_ic.name).order_by(_ic.name)
    if registration_status is not None:
        query = query.where(_ic.registered.is_(registration_status == "Registered"))
    names = [row[0] for row in conn.execute(query)]
    if not tag_filters:
        return names
    tags = _tags_of(conn, names)
    return [name for name in names if matches_any(tags[name], tag_filters)]


def instances_for_group(conn: Connection, group: dict[str, Any]) -> list[str]:
    """Registered instances a group targets through onPremisesInstanceTagFilters or
    onPremisesTagSet, sorted by name; none when the group has neither."""
    filters = group.get("onPremisesInstanceTagFilters") or []
    tag_set_lists = (group.get("onPremisesTagSet") or {}).get("onPremisesTagSetList") or []
    tag_set = [filter_list for filter_list in tag_set_lists if filter_list]
    if not filters and not tag_set:
        return []
    names = list_instance_names(conn, registration_status="Registered")
    tags = _tags_of(conn, names)
    if filters:
        return [name for name in names if matches_any(tags[name], filters)]
    return [name for name in names if all(matches_any(tags[name], f) for f in tag_set)]


def filter_type(tag_filter: dict[str, Any]) -> str:
    """A filter's Type, inferred from which of Key / Value it has when not given."""
    if tag_filter.get("Type"):
        return str(tag_filter["Type"])
    if tag_filter.get("Key") and tag_filter.get("Value"):
        return "KEY_AND_VALUE"
    return "KEY_ONLY" if tag_filter.get("Key") else "VALUE_ONLY"


def matches_any(tags: dict[str, str], filters: list[dict[str, Any]]) -> bool:
    """True when the tags satisfy at least one filter."""
    for tag_filter in filters:
        kind = filter_type(tag_filter)
        key, value = tag_filter.get("Key"), tag_filter.get("Value")
        if kind == "KEY_ONLY" and key in tags:
            return True
        if kind == "VALUE_ONLY" and value in tags.values():
            return True
        if kind == "KEY_AND_VALUE" and key in tags and tags[key] == value:
            return True
    return False


def fleet_status(conn: Connection) -> list[dict[str, Any]]:
    """Every registered instance with its agent's last contact and reported version (None
    until an agent says) and, per deployment group,
    the revision of the last deployment that succeeded on it and when that ended."""
    d, t = schema.deployments.c, schema.targets.c
    rows = conn.execute(
        select(_ic.name, _ic.register_time, _ic.last_seen, _ic.agent_version).where(
            _ic.registered.is_(True)
        )
    )
    fleet = {
        name: {
            "instanceName": name,
            "registerTime": registered,
            "lastSeen": seen,
            "agentVersion": version,
            "revisions": {},
        }
        for name, registered, seen, version in rows
    }
    succeeded = conn.execute(
        select(t.target_id, d.id, d.application_name, d.group_name, d.complete_time, d.info)
        .join(schema.deployments, d.id == t.deployment_id)
        .where(t.status == "Succeeded")
        .order_by(d.complete_time)
    )
    for target, deployment_id, app, group, ended, info in succeeded:
        if target in fleet:  # later rows replace earlier ones: the last success wins
            fleet[target]["revisions"][(app, group)] = {
                "applicationName": app,
                "deploymentGroupName": group,
                "deploymentId": deployment_id,
                "revision": info.get("revision"),
                "since": ended,
            }
    tags = _tags_of(conn, fleet)
    for name, entry in fleet.items():
        entry["revisions"] = list(entry["revisions"].values())
        entry["tags"] = tags.get(name, {})
    return [fleet[name] for name in sorted(fleet)]


def never_connected(conn: Connection, names: Iterable[str]) -> list[str]:
    """Of ``names``, the registered instances whose agent has never polled."""
    rows = conn.execute(
        select(_ic.name).where(
            _ic.name.in_(list(names)), _ic.registered.is_(True), _ic.last_seen.is_(None)
        )
    )
    return sorted(row[0] for row in rows)
