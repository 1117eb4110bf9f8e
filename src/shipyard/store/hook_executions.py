"""Lambda hook invocations: the execution id a hook function was handed, until it
reports its status (PutLifecycleEventHookExecutionStatus) or its event ends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from shipyard.store import schema

PENDING = "Pending"

_h = schema.hook_executions.c


@dataclass(frozen=True)
class HookExecution:
    execution_id: str
    deployment_id: str
    target_id: str
    event: str
    status: str


def add(
    conn: Connection, execution_id: str, deployment_id: str, target_id: str, event: str, now: float
) -> None:
    conn.execute(
        schema.hook_executions.insert().values(
            execution_id=execution_id,
            deployment_id=deployment_id,
            target_id=target_id,
            event=event,
            status=PENDING,
            created=now,
        )
    )


def get(conn: Connection, execution_id: str) -> HookExecution | None:
    row = conn.execute(
        select(_h.execution_id, _h.deployment_id, _h.target_id, _h.event, _h.status).where(
            _h.execution_id == execution_id
        )
    ).first()
    return HookExecution(*row) if row is not None else None


def pending_for(conn: Connection, deployment_id: str, target_id: str, event: str) -> str | None:
    """The execution id still awaiting a report for this event, if any."""
    return conn.execute(
        select(_h.execution_id).where(
            (_h.deployment_id == deployment_id)
            & (_h.target_id == target_id)
            & (_h.event == event)
            & (_h.status == PENDING)
        )
    ).scalar()


def report(conn: Connection, execution_id: str, status: str) -> bool:
    """Record the hook's status; False when it had reported already (a second report)."""
    done = conn.execute(
        schema.hook_executions.update()
        .where((_h.execution_id == execution_id) & (_h.status == PENDING))
        .values(status=status)
    )
    return done.rowcount == 1
