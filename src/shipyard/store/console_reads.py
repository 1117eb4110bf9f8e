"""What the console reads that no API operation answers in one go: the fleet report's
hosts and which revision each runs, recent history, and hook output after a point."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema
from shipyard.store.deployments import CUT_NOTE

_d = schema.deployments.c
_t = schema.targets.c
_i = schema.instances.c
_tags = schema.instance_tags.c
_l = schema.event_logs.c


def hosts(conn: Connection) -> list[dict[str, Any]]:
    """Every instance (deregistered ones too) with its tags and agent contact."""
    tags: dict[str, dict[str, str]] = {}
    for name, key, value in conn.execute(select(_tags.instance_name, _tags.key, _tags.value)):
        tags.setdefault(name, {})[key] = value
    rows = conn.execute(
        select(_i.name, _i.registered, _i.register_time, _i.last_seen, _i.agent_version).order_by(
            _i.name
        )
    )
    return [
        {
            "name": r.name,
            "registered": bool(r.registered),
            "registerTime": r.register_time,
            "lastSeen": r.last_seen,
            "agentVersion": r.agent_version or "",
            "tags": dict(sorted(tags.get(r.name, {}).items())),
        }
        for r in rows
    ]


def deployments_newest_first(conn: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """Deployment rows (no targets): id, names, status, times, revision, creator."""
    query = select(
        _d.id,
        _d.application_name,
        _d.group_name,
        _d.status,
        _d.create_time,
        _d.complete_time,
        _d.info,
    ).order_by(_d.create_time.desc(), _d.id)
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            "id": r.id,
            "application": r.application_name,
            "group": r.group_name,
            "status": r.status,
            "createTime": r.create_time,
            "completeTime": r.complete_time,
            "revision": (r.info or {}).get("revision") or {},
            "creator": (r.info or {}).get("creator", ""),
        }
        for r in conn.execute(query)
    ]


def succeeded_hosts(conn: Connection) -> dict[str, list[str]]:
    """Deployment id -> the hosts it succeeded on."""
    found: dict[str, list[str]] = {}
    query = select(_t.deployment_id, _t.target_id).where(_t.status == "Succeeded")
    for deployment_id, target_id in conn.execute(query.order_by(_t.target_id)):
        found.setdefault(deployment_id, []).append(target_id)
    return found


def logs_after(
    conn: Connection, deployment_id: str, after_id: int
) -> list[tuple[int, str, str, str]]:
    """``(row id, target, event, chunk)`` of a deployment's hook output past ``after_id``."""
    query = (
        select(_l.id, _l.target_id, _l.event, _l.chunk, _l.cut_bytes)
        .where((_l.deployment_id == deployment_id) & (_l.id > after_id))
        .order_by(_l.id)
    )
    return [
        (
            r.id,
            r.target_id,
            r.event,
            CUT_NOTE.format(r.cut_bytes) + r.chunk if r.cut_bytes else r.chunk,
        )
        for r in conn.execute(query)
    ]


def log_mark(conn: Connection, deployment_id: str) -> int:
    """The last hook output row of a deployment (0 for none): a change means new output."""
    query = select(_l.id).where(_l.deployment_id == deployment_id).order_by(_l.id.desc())
    row = conn.execute(query.limit(1)).first()
    return int(row[0]) if row else 0


def activity_mark(conn: Connection) -> tuple[Any, ...]:
    """Changes whenever a deployment starts, steps or ends: the overview's cue to refresh."""
    active = conn.execute(select(_d.id, _d.version).where(_d.active.is_(True)).order_by(_d.id))
    newest = conn.execute(select(_d.id).order_by(_d.create_time.desc()).limit(1)).first()
    return (tuple(tuple(r) for r in active), newest[0] if newest else None)
