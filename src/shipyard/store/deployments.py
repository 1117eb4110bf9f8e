"""Deployments, their targets, host commands and script logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from shipyard.engine.state import DeploymentState, TargetState
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, CommandStatus
from shipyard.store import schema
from shipyard.store.dialects import for_update

D = schema.deployments
T = schema.targets
H = schema.host_commands
L = schema.event_logs


# The statements every lifecycle event runs are built once: SQLAlchemy memoises a
# statement's cache key on the object, so reusing it skips rebuilding the expression
# and recomputing the key (about two thirds of a simple query's cost here).
_VERSION = select(D.c.version).where(D.c.id == bindparam("deployment_id"))
_VERSION_LOCKED = _VERSION.with_for_update()
_SAVE_STATE = (
    update(D)
    .where(D.c.id == bindparam("deployment_id"))
    .values(
        status=bindparam("new_status"),
        complete_time=bindparam("new_complete_time"),
        active=bindparam("new_active"),
        version=D.c.version + 1,
        state=bindparam("new_state", type_=D.c.state.type),
    )
)
_BUMP_VERSION = (
    update(D).where(D.c.id == bindparam("deployment_id")).values(version=D.c.version + 1)
)
_SAVE_TARGET = (
    update(T)
    .where(and_(T.c.deployment_id == bindparam("in_deployment"), T.c.target_id == bindparam("tid")))
    .values(status=bindparam("new_status"), doc=bindparam("new_doc", type_=T.c.doc.type))
)
_UNCLAIMED = H.c.status == CommandStatus.PENDING.value
# Claimed before reoffer_before but never acknowledged: its poll answer was lost.
_LOST = and_(
    H.c.status == CommandStatus.IN_PROGRESS.value,
    H.c.acknowledged.is_(None),
    H.c.claimed < bindparam("reoffer_before"),
)
_NEXT_COMMAND = (
    select(H)
    .where(and_(H.c.instance_name == bindparam("instance"), or_(_UNCLAIMED, _LOST)))
    .order_by(H.c.id)
    .limit(1)
)
_CLAIM_PENDING = (
    update(H)
    .where(and_(H.c.id == bindparam("command_id"), _UNCLAIMED))
    .values(status=CommandStatus.IN_PROGRESS.value, claimed=bindparam("now"))
)
_CLAIM_LOST = (
    update(H)
    .where(and_(H.c.id == bindparam("command_id"), or_(_UNCLAIMED, _LOST)))
    .values(status=CommandStatus.IN_PROGRESS.value, claimed=bindparam("now"))
)
_GET_COMMAND = select(H).where(H.c.id == bindparam("command_id"))
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
            H.c.status.not_in([CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value]),
        )
    )
    .values(status=bindparam("new_status"), completed=bindparam("now"))
    .returning(H.c.id, H.c.instance_name, H.c.deployment_id, H.c.command_name, H.c.status)
)
_ADD_COMMAND = H.insert().values(
    instance_name=bindparam("new_instance"),
    deployment_id=bindparam("new_deployment"),
    command_name=bindparam("new_command"),
    status=bindparam("new_status"),
    created=bindparam("now"),
    claimed=bindparam("claimed_at"),
    acknowledged=bindparam("acknowledged_at"),
)


@dataclass
class StoredDeployment:
    state: DeploymentState
    info: dict[str, Any]  # the static deploymentInfo members (revision, creator, ...)
    application_name: str
    group_name: str
    # The deployment-level state as last read or written (JSON): a step that changed
    # only a host leaves it alone, and then only the row's version is bumped.
    saved_header: str | None = field(default=None, compare=False, repr=False)


def insert(
    conn: Connection, state: DeploymentState, info: dict[str, Any], app: str, group: str
) -> None:
    conn.execute(
        D.insert().values(
            id=state.deployment_id,
            application_name=app,
            group_name=group,
            status=state.status.value,
            create_time=state.create_time,
            complete_time=state.complete_time,
            external_id=info.get("externalId"),
            active=state.status not in TERMINAL_DEPLOYMENT_STATUSES,
            version=1,
            state=state.header_doc(),
            info=info,
        )
    )
    if state.targets:
        conn.execute(
            T.insert(),
            [
                {
                    "deployment_id": state.deployment_id,
                    "target_id": t.target_id,
                    "status": t.status.value,
                    "doc": t.to_doc(),
                }
                for t in state.targets.values()
            ],
        )


def load(conn: Connection, deployment_id: str, *, lock: bool = False) -> StoredDeployment | None:
    query = select(D.c.state, D.c.info, D.c.application_name, D.c.group_name).where(
        D.c.id == deployment_id
    )
    row = conn.execute(for_update(query, conn.dialect.name) if lock else query).first()
    if row is None:
        return None
    header, info = row[0], row[1]
    target_rows = conn.execute(select(T.c.doc).where(T.c.deployment_id == deployment_id)).scalars()
    targets = [TargetState.from_doc(d) for d in target_rows]
    order = info.get("targetOrder", [])
    rank = {name: i for i, name in enumerate(order)}
    targets.sort(key=lambda t: rank.get(t.target_id, len(rank)))
    state = DeploymentState.from_docs(header, targets)
    return StoredDeployment(state, info, row[2], row[3], _header_json(state))


def lock_version(conn: Connection, deployment_id: str) -> int | None:
    """Lock the deployment's row for this transaction; return its write version.
    (SQLite's single writer makes the lock implicit: see dialects.for_update.)"""
    query = _VERSION if conn.dialect.name == "sqlite" else _VERSION_LOCKED
    row = conn.execute(query, {"deployment_id": deployment_id}).first()
    return int(row[0]) if row else None


def version(conn: Connection, deployment_id: str) -> int | None:
    """The deployment's write version, without a lock."""
    row = conn.execute(_VERSION, {"deployment_id": deployment_id}).first()
    return int(row[0]) if row else None


def save(
    conn: Connection,
    stored: StoredDeployment,
    changed_targets: Sequence[str] = (),
    *,
    with_info: bool = True,
) -> None:
    """Write the state and ``changed_targets``; ``info`` too unless ``with_info`` is
    False (an engine step never changes it)."""
    state = stored.state
    if with_info:
        conn.execute(update(D).where(D.c.id == state.deployment_id).values(info=stored.info))
    doc = state.header_doc()
    header = json.dumps(doc, separators=(",", ":"))
    if header == stored.saved_header:
        conn.execute(_BUMP_VERSION, {"deployment_id": state.deployment_id})
    else:
        conn.execute(
            _SAVE_STATE,
            {
                "deployment_id": state.deployment_id,
                "new_status": state.status.value,
                "new_complete_time": state.complete_time,
                "new_active": state.status not in TERMINAL_DEPLOYMENT_STATUSES,
                "new_state": doc,
            },
        )
        stored.saved_header = header
    if changed_targets:
        conn.execute(
            _SAVE_TARGET,
            [
                {
                    "in_deployment": state.deployment_id,
                    "tid": target_id,
                    "new_status": state.targets[target_id].status.value,
                    "new_doc": state.targets[target_id].to_doc(),
                }
                for target_id in changed_targets
            ],
        )


def _header_json(state: DeploymentState) -> str:
    return json.dumps(state.header_doc(), separators=(",", ":"))


def active_for_group(conn: Connection, app: str, group: str) -> str | None:
    row = conn.execute(
        select(D.c.id).where(
            and_(D.c.application_name == app, D.c.group_name == group, D.c.active.is_(True))
        )
    ).first()
    return row[0] if row else None


def active_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(D.c.id).where(D.c.active.is_(True))).scalars())


def list_ids(
    conn: Connection,
    *,
    app: str | None,
    group: str | None,
    statuses: Sequence[str],
    external_id: str | None,
    start: float | None,
    end: float | None,
) -> list[str]:
    conds = []
    if app is not None:
        conds.append(D.c.application_name == app)
    if group is not None:
        conds.append(D.c.group_name == group)
    if statuses:
        conds.append(D.c.status.in_(list(statuses)))
    if external_id is not None:
        conds.append(D.c.external_id == external_id)
    if start is not None:
        conds.append(D.c.create_time >= start)
    if end is not None:
        conds.append(D.c.create_time <= end)
    query = select(D.c.id).where(and_(*conds)).order_by(D.c.create_time.desc(), D.c.id)
    return list(conn.execute(query).scalars())


def target_ids(conn: Connection, deployment_id: str, statuses: Sequence[str] = ()) -> list[str]:
    query = select(T.c.target_id).where(T.c.deployment_id == deployment_id)
    if statuses:
        query = query.where(T.c.status.in_(list(statuses)))
    return list(conn.execute(query.order_by(T.c.target_id)).scalars())


def deployments_using_group(conn: Connection, app: str, group: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(D)
            .where(and_(D.c.application_name == app, D.c.group_name == group))
        ).scalar_one()
    )


# ---- host commands ---------------------------------------------------------------


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
    result = conn.execute(
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
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def claim_next_command(
    conn: Connection, instance: str, now: float, reoffer_before: float
) -> HostCommand | None:
    """Hand the oldest pending command of ``instance`` to exactly one poller.

    A command claimed before ``reoffer_before`` but never acknowledged is offered
    again: its poll answer was lost (a dropped connection, a server killed after its
    commit), and the agent has not started it."""
    while True:
        row = conn.execute(
            _NEXT_COMMAND, {"instance": instance, "reoffer_before": reoffer_before}
        ).first()
        if row is None:
            return None
        claim = _CLAIM_PENDING if row.status == CommandStatus.PENDING.value else _CLAIM_LOST
        claimed = conn.execute(
            claim, {"command_id": row.id, "now": now, "reoffer_before": reoffer_before}
        )
        if claimed.rowcount == 1:
            return HostCommand(
                row.id,
                row.instance_name,
                row.deployment_id,
                row.command_name,
                CommandStatus.IN_PROGRESS.value,
            )


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
    conn: Connection, instances: Sequence[str], reoffer_before: float
) -> set[str]:
    """Of ``instances``, those with a command a poll would hand out now."""
    lost = and_(
        H.c.status == CommandStatus.IN_PROGRESS.value,
        H.c.acknowledged.is_(None),
        H.c.claimed < reoffer_before,
    )
    rows = conn.execute(
        select(H.c.instance_name)
        .where(
            and_(
                H.c.instance_name.in_(list(instances)),
                or_(H.c.status == CommandStatus.PENDING.value, lost),
            )
        )
        .distinct()
    )
    return {row[0] for row in rows}


def get_command(conn: Connection, command_id: int) -> HostCommand | None:
    row = conn.execute(_GET_COMMAND, {"command_id": command_id}).first()
    return _command(row) if row else None


def acknowledge_command(conn: Connection, command_id: int, now: float) -> None:
    conn.execute(_ACKNOWLEDGE_COMMAND, {"command_id": command_id, "now": now})


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
        row = conn.execute(_FINISH_OPEN_COMMAND, params).first()
        return _command(row) if row is not None else None
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


# ---- script logs -------------------------------------------------------------------


def append_log(
    conn: Connection, deployment_id: str, target_id: str, event: str, chunk: str, now: float
) -> None:
    conn.execute(
        L.insert().values(
            deployment_id=deployment_id, target_id=target_id, event=event, chunk=chunk, created=now
        )
    )


def read_logs(
    conn: Connection, deployment_id: str, target_id: str, event: str | None
) -> list[tuple[str, str]]:
    """``(event, chunk)`` pairs in the order the agent sent them."""
    query = select(L.c.event, L.c.chunk).where(
        and_(L.c.deployment_id == deployment_id, L.c.target_id == target_id)
    )
    if event is not None:
        query = query.where(L.c.event == event)
    return [(r[0], r[1]) for r in conn.execute(query.order_by(L.c.id))]


def instance_health(
    conn: Connection, app: str, group: str, instances: Sequence[str], revision: dict[str, Any]
) -> dict[str, str]:
    """Each instance's health for scheduling: unhealthy, unknown, old or current.

    Taken from the instance's most recent target in this group's deployments: a
    failure makes it unhealthy; a success of the same revision makes it current, of
    another revision old; never deployed is unknown.
    """
    health = {name: "unknown" for name in instances}
    if not instances:
        return health
    rows = conn.execute(
        select(T.c.target_id, T.c.status, D.c.info)
        .join(D, D.c.id == T.c.deployment_id)
        .where(
            and_(
                D.c.application_name == app,
                D.c.group_name == group,
                T.c.target_id.in_(list(instances)),
                T.c.status.in_(["Succeeded", "Failed"]),
            )
        )
        .order_by(D.c.create_time.desc())
    )
    seen: set[str] = set()
    for target_id, status, info in rows:
        if target_id in seen:
            continue
        seen.add(target_id)
        if status == "Failed":
            health[target_id] = "unhealthy"
        elif info.get("revision") == revision:
            health[target_id] = "current"
        else:
            health[target_id] = "old"
    return health


def targets_of_revision(
    conn: Connection, app: str, group: str, revision: dict[str, Any]
) -> set[str]:
    """Hosts that any deployment of ``revision`` in this group has targeted."""
    rows = conn.execute(
        select(T.c.target_id, D.c.info)
        .join(D, D.c.id == T.c.deployment_id)
        .where(and_(D.c.application_name == app, D.c.group_name == group))
    )
    return {target_id for target_id, info in rows if info.get("revision") == revision}


def agents_heard_from(conn: Connection, names: Sequence[str]) -> list[str]:
    """Of ``names``, the instances whose agent has polled at least once."""
    c = schema.instances.c
    rows = conn.execute(
        select(c.name).where(and_(c.name.in_(list(names)), c.last_seen.is_not(None)))
    )
    return sorted(row[0] for row in rows)
