"""The audit list: who changed what when (rows written by server/audit.py)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema

_a = schema.audit.c


def record(conn: Connection, now: float, kind: str, name: str, action: str, subject: str) -> None:
    conn.execute(
        schema.audit.insert().values(
            time=now,
            principal_kind=kind,
            principal_name=name[:255],
            action=action[:128],
            subject=subject[:512],
        )
    )


def entries(
    conn: Connection, *, limit: int, before_id: int | None = None, principal: str | None = None
) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` pages on from an earlier answer's last id."""
    query = select(schema.audit).order_by(_a.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(_a.id < before_id)
    if principal:
        query = query.where(_a.principal_name == principal)
    return [
        {
            "id": row.id,
            "time": row.time,
            "principalKind": row.principal_kind,
            "principal": row.principal_name,
            "action": row.action,
            "subject": row.subject,
        }
        for row in conn.execute(query)
    ]


def creators(conn: Connection, deployment_ids: list[str]) -> dict[str, str]:
    """Who created each deployment (CreateDeployment's audit row), where recorded."""
    if not deployment_ids:
        return {}
    subjects = [f"deployment/{d}" for d in deployment_ids]
    rows = conn.execute(
        select(_a.subject, _a.principal_name).where(
            (_a.action == "CreateDeployment") & _a.subject.in_(subjects)
        )
    )
    return {subject.removeprefix("deployment/"): name for subject, name in rows}
