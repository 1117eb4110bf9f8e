"""Host commands: the work queued for each instance's agent, claimed by its polls,
acknowledged and finished as it reports back.

The statements every lifecycle event runs are built once and run on the driver
directly (store/direct.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from shipyard.model import CommandStatus
from shipyard.store import direct, schema
from shipyard.store.quick_reads import QuickReads

H = schema.host_commands

_UNCLAIMED = H.c.status == CommandStatus.PENDING.value
# Claimed before reoffer_before but never acknowledged: its poll answer was lost.
_LOST = and_(
    H.c.status == CommandStatus.IN_PROGRESS.value,
    H.c.acknowledged.is_(None),
    H.c.claimed < bindparam("reoffer_before"),
)
_FIELDS = (H.c.id, H.c.instance_name, H.c.deployment_id, H.c.command_name, H.c.status)
_NEXT_COMMAND = (
    select(*_FIELDS)
    .where(and_(H.c.instance_name == bindparam("instance"), or_(_UNCLAIMED, _LOST)))
    .order_by(H.c.id)
    .limit(1)
)
_CLAIM_PENDING = (
    update(H)
    .where(and_(H.c.id == bindparam("command_id"), _UNCLAIMED))
    .values(status=CommandStatus.IN_PROGRESS.value, claimed=bindparam("now"))
    .returning(H.c.id)
)
_CLAIM_LOST = (
    update(H)
    .where(and_(H.c.id == bindparam("command_id"), or_(_UNCLAIMED, _LOST)))
    .values(status=CommandStatus.IN_PROGRESS.value, claimed=bindparam("now"))
    .returning(H.c.id)
)
_GET_COMMAND = select(H).where(H.c.id == bindparam("command_id"))
_WITH_WORK = select(H.c.instance_name).where(or_(_UNCLAIMED, _LOST)).distinct()
_ACKNOWLEDGE_COMMAND = (
    update(H).where(H.c.id == bindparam("command_id")).values(acknowledged=bindparam("now"))
)
_FINISH_COMMAND = (
    update(H)
    .where(H.c.id == bindparam("command_id"))
    .values(status=bindparam("new_status"), completed=bindparam("now"))
)
_FINISH_OPEN_COMMAND = (
    update(H)
    .where(
        and_(
            H.c.id == bindparam("command_id"),
            H.c.instance_name == bindparam("instance"),
            # Two comparisons, not NOT IN: a list is an expanding parameter, which
            # SQLAlchemy renders into the SQL again at every execution (+30 us).
            H.c.status != CommandStatus.SUCCEEDED.value,
            H.c.status != CommandStatus.FAILED.value,
        )
    )
    .values(status=bindparam("new_status"), completed=bindparam("now"))
    .returning(*_FIELDS)
)
_ADD_COMMAND = (
    H.insert()
    .values(
        instance_name=bindparam("new_instance"),
        deployment_id=bindparam("new_deployment"),
        command_name=bindparam("new_command"),
        status=bindparam("new_status"),
        created=bindparam("now"),
        claimed=bindparam("claimed_at"),
        acknowledged=bindparam("acknowledged_at"),
        output_bytes=0,
    )
    .returning(H.c.id)
)


@dataclass(frozen=True)
class HostCommand:
    id: int
    instance_name: str
    deployment_id: str
    command_name: str
    status: str


def _command(row: Any) -> HostCommand:
    return HostCommand(row.id, row.instance_name, row.deployment_id, row.command_name, row.status)


def add_command(
    conn: Connection,
    instance: str,
    deployment_id: str,
    command_name: str,
    now: float,
    *,
    handed: bool = False,
) -> int:
    """Queue a command for ``instance``; ``handed``: it goes to the agent in the
    answer of the request being served, so it is claimed and acknowledged now."""
    (row,) = direct.run(
        conn,
        _ADD_COMMAND,
        {
            "new_instance": instance,
            "new_deployment": deployment_id,
            "new_command": command_name,
            "new_status": (CommandStatus.IN_PROGRESS if handed else CommandStatus.PENDING).value,
            "now": now,
            "claimed_at": now if handed else None,
            "acknowledged_at": now if handed else None,
        },
    )
    return int(row[0])


def has_work(quick: QuickReads, instance: str, reoffer_before: float) -> bool:
    """Whether ``instance`` has a command to claim, as committed now: the idle poll's
    look, outside any transaction (a claim it finds runs in one, and looks again)."""
    return (
        quick.first(_NEXT_COMMAND, {"instance": instance, "reoffer_before": reoffer_before})
        is not None
    )


def claim_next_command(
    conn: Connection, instance: str, now: float, reoffer_before: float
) -> HostCommand | None:
    """Hand the oldest pending command of ``instance`` to exactly one poller.

    A command claimed before ``reoffer_before`` but never acknowledged is offered
    again: its poll answer was lost (a dropped connection, a server killed after its
    commit), and the agent has not started it."""
    while True:
        rows = direct.run(
            conn, _NEXT_COMMAND, {"instance": instance, "reoffer_before": reoffer_before}
        )
        if not rows:
            return None
        command_id, _, deployment_id, command_name, status = rows[0]
        claim = _CLAIM_PENDING if status == CommandStatus.PENDING.value else _CLAIM_LOST
        claimed = direct.run(
            conn, claim, {"command_id": command_id, "now": now, "reoffer_before": reoffer_before}
        )
        if claimed:
            in_progress = CommandStatus.IN_PROGRESS.value
            return HostCommand(command_id, instance, deployment_id, command_name, in_progress)


def handed_after(conn: Connection, done: HostCommand) -> HostCommand | None:
    """The command a completion of ``done`` handed its agent, if it still runs.

    Only ``done``'s own completion dispatches the host's next event of that
    deployment, so the first acknowledged, unfinished command of the same host and
    deployment queued after ``done`` is the one its answer carried."""
    row = conn.execute(
        select(H)
        .where(
            and_(
                H.c.instance_name == done.instance_name,
                H.c.deployment_id == done.deployment_id,
                H.c.id > done.id,
                H.c.status == CommandStatus.IN_PROGRESS.value,
                H.c.acknowledged.is_not(None),
            )
        )
        .order_by(H.c.id)
        .limit(1)
    ).first()
    return _command(row) if row is not None else None


def silent_instances(
    conn: Connection, names: Sequence[str], silent_since: float
) -> dict[str, float | None]:
    """Of ``names``, those whose agent last polled before ``silent_since`` (or never),
    with their last contact."""
    c = schema.instances.c
    rows = conn.execute(select(c.name, c.last_seen).where(c.name.in_(list(names))))
    return {
        name: last_seen for name, last_seen in rows if last_seen is None or last_seen < silent_since
    }


def instances_with_work(
    conn: Connection, instances: Collection[str], reoffer_before: float
) -> set[str]:
    """Of ``instances``, those with a command a poll would hand out now.

    The instances with open work are few (a command waits in Pending only until its
    agent's next poll), the polling ones many: the open ones are read by status
    (``ix_host_commands_open``) and matched here, rather than sent as an IN list."""
    rows = direct.run(conn, _WITH_WORK, {"reoffer_before": reoffer_before})
    return {name for (name,) in rows if name in instances}


def get_command(conn: Connection, command_id: int) -> HostCommand | None:
    row = conn.execute(_GET_COMMAND, {"command_id": command_id}).first()
    return _command(row) if row else None


def acknowledge_command(conn: Connection, command_id: int, now: float) -> None:
    direct.run(conn, _ACKNOWLEDGE_COMMAND, {"command_id": command_id, "now": now})


def finish_command(conn: Connection, command_id: int, status: str, now: float) -> None:
    """Record a command's result (Succeeded or Failed)."""
    conn.execute(_FINISH_COMMAND, {"command_id": command_id, "new_status": status, "now": now})


def finish_open_command(
    conn: Connection, command_id: int, instance: str, status: str, now: float
) -> HostCommand | None:
    """Record the result of ``instance``'s command if it has none yet; the command
    (with its new status), or None when it is not open or not that instance's.
    One statement where the database can return updated rows (the common case of
    every lifecycle event), two otherwise."""
    if conn.dialect.update_returning:
        params = {"command_id": command_id, "instance": instance, "new_status": status, "now": now}
        rows = direct.run(conn, _FINISH_OPEN_COMMAND, params)
        return HostCommand(*rows[0]) if rows else None
    command = get_command(conn, command_id)
    if command is None or command.instance_name != instance:
        return None
    if command.status in (CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value):
        return None
    finish_command(conn, command_id, status, now)
    return HostCommand(command.id, instance, command.deployment_id, command.command_name, status)


def fail_open_commands(conn: Connection, deployment_id: str, now: float) -> None:
    """Commands of a finished deployment that no agent completed: mark them Failed."""
    conn.execute(
        update(H)
        .where(
            and_(
                H.c.deployment_id == deployment_id,
                H.c.status.in_([CommandStatus.PENDING.value, CommandStatus.IN_PROGRESS.value]),
            )
        )
        .values(status=CommandStatus.FAILED.value, completed=now)
    )
