"""Deployments, their targets, host commands and script logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from shipyard.engine.state import DeploymentState, TargetState
from shipyard.engine.state import StoredDeployment as StoredDeployment  # re-exported
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES
from shipyard.store import direct, schema
from shipyard.store.dialects import for_update, in_lists

D = schema.deployments
T = schema.targets
H = schema.host_commands
L = schema.event_logs


# The statements every lifecycle event runs are built once, and run on the driver
# directly (store/direct.py says why).
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


# Built once: GetDeployment of a finished deployment loads it at every call.
_LOAD = select(D.c.state, D.c.info, D.c.application_name, D.c.group_name).where(
    D.c.id == bindparam("deployment_id")
)
_LOAD_TARGETS = select(T.c.doc).where(T.c.deployment_id == bindparam("deployment_id"))


def load(conn: Connection, deployment_id: str, *, lock: bool = False) -> StoredDeployment | None:
    key = {"deployment_id": deployment_id}
    row = conn.execute(for_update(_LOAD, conn.dialect.name) if lock else _LOAD, key).first()
    if row is None:
        return None
    header, info = row[0], row[1]
    target_rows = conn.execute(_LOAD_TARGETS, key).scalars()
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
    rows = direct.run(conn, query, {"deployment_id": deployment_id})
    return int(rows[0][0]) if rows else None


def version(conn: Connection, deployment_id: str) -> int | None:
    """The deployment's write version, without a lock."""
    rows = direct.run(conn, _VERSION, {"deployment_id": deployment_id})
    return int(rows[0][0]) if rows else None


def save(
    conn: Connection,
    stored: StoredDeployment,
    changed_targets: Sequence[str] = (),
    *,
    with_info: bool = True,
    bump: bool = True,
) -> int:
    """Write the state and ``changed_targets``; ``info`` too unless ``with_info`` is
    False (an engine step never changes it). Returns by how much the row's version
    went up: it always does when the state header changed, and otherwise only with
    ``bump`` (a caller whose transaction raised it already passes False)."""
    state = stored.state
    if with_info:
        conn.execute(update(D).where(D.c.id == state.deployment_id).values(info=stored.info))
    doc = state.header_doc()
    header = json.dumps(doc, separators=(",", ":"))
    bumped = 1
    if header == stored.saved_header:
        if bump:
            direct.run(conn, _BUMP_VERSION, {"deployment_id": state.deployment_id})
        else:
            bumped = 0
    else:
        direct.run(
            conn,
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
        direct.run_many(
            conn,
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
    return bumped


def _header_json(state: DeploymentState) -> str:
    return json.dumps(state.header_doc(), separators=(",", ":"))


def active_for_group(conn: Connection, app: str, group: str) -> str | None:
    row = conn.execute(
        select(D.c.id).where(
            and_(D.c.application_name == app, D.c.group_name == group, D.c.active.is_(True))
        )
    ).first()
    return row[0] if row else None


def active_revisions_of(conn: Connection, instance: str) -> list[dict[str, Any]]:
    """The revisions of the deployments in progress that target ``instance``."""
    rows = conn.execute(
        select(D.c.info)
        .join(T, T.c.deployment_id == D.c.id)
        .where(and_(D.c.active.is_(True), T.c.target_id == instance))
    ).scalars()
    return [info["revision"] for info in rows if info.get("revision")]


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


# ---- script logs -------------------------------------------------------------------


CUT_NOTE = "[... {} bytes cut ...]\n"


@dataclass(frozen=True)
class LogPlace:
    """Where a host command's output goes: its deployment, host and lifecycle event."""

    command_id: int
    deployment_id: str
    target_id: str
    event: str


def append_log(conn: Connection, place: LogPlace, chunk: str, cap: int, now: float) -> None:
    """Store a chunk of the command's output, keeping at most ``cap`` bytes of it.

    The first half of the cap is kept as sent, one row per chunk. What comes after goes
    to one tail row holding the last ``cap - cap // 2`` bytes, rewritten as output
    arrives, whose ``cut_bytes`` counts what was cut between the two (read_logs shows
    it). A host that sends without end fills no more than ``cap`` per command."""
    seen_query = select(H.c.output_bytes).where(H.c.id == place.command_id)
    seen = int(conn.execute(for_update(seen_query, conn.dialect.name)).scalar_one())
    data = chunk.encode()
    conn.execute(update(H).where(H.c.id == place.command_id).values(output_bytes=seen + len(data)))
    head, rest = _split_utf8(data, max(0, cap // 2 - seen))
    where = and_(
        L.c.deployment_id == place.deployment_id,
        L.c.target_id == place.target_id,
        L.c.event == place.event,
    )
    if head:
        conn.execute(L.insert().values(**_log_row(place, head.decode(), now)))
    if not rest:
        return
    tail_row = conn.execute(
        select(L.c.id, L.c.chunk, L.c.cut_bytes).where(and_(where, L.c.cut_bytes.is_not(None)))
    ).first()
    tail = (tail_row.chunk.encode() if tail_row else b"") + rest
    cut = int(tail_row.cut_bytes) if tail_row else 0
    dropped, tail = _split_utf8(tail, max(0, len(tail) - (cap - cap // 2)), at_least=True)
    values = {"chunk": tail.decode(), "cut_bytes": cut + len(dropped), "created": now}
    if tail_row is None:
        conn.execute(L.insert().values(**{**_log_row(place, "", now), **values}))
    else:
        conn.execute(update(L).where(L.c.id == tail_row.id).values(**values))


def _log_row(place: LogPlace, chunk: str, now: float) -> dict[str, Any]:
    return {
        "deployment_id": place.deployment_id,
        "target_id": place.target_id,
        "event": place.event,
        "chunk": chunk,
        "created": now,
    }


def _split_utf8(data: bytes, at: int, *, at_least: bool = False) -> tuple[bytes, bytes]:
    """``data`` split near ``at`` on a character boundary: at or before it, or with
    ``at_least`` at or after it."""
    at = min(at, len(data))
    while 0 < at < len(data) and data[at] & 0xC0 == 0x80:  # inside a UTF-8 sequence
        at += 1 if at_least else -1
    return data[:at], data[at:]


def read_logs(
    conn: Connection, deployment_id: str, target_id: str, event: str | None
) -> list[tuple[str, str]]:
    """``(event, chunk)`` pairs in the order the agent sent them, with a note where
    output was cut."""
    query = select(L.c.event, L.c.chunk, L.c.cut_bytes).where(
        and_(L.c.deployment_id == deployment_id, L.c.target_id == target_id)
    )
    if event is not None:
        query = query.where(L.c.event == event)
    return [
        (r[0], CUT_NOTE.format(r[2]) + r[1] if r[2] else r[1])
        for r in conn.execute(query.order_by(L.c.id))
    ]


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
    of_revision = _deployments_of(conn, app, group, revision)
    rows = conn.execute(
        select(T.c.target_id, T.c.status, T.c.deployment_id)
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
    for target_id, status, deployment_id in rows:
        if target_id in seen:
            continue
        seen.add(target_id)
        if status == "Failed":
            health[target_id] = "unhealthy"
        elif deployment_id in of_revision:
            health[target_id] = "current"
        else:
            health[target_id] = "old"
    return health


def targets_of_revision(
    conn: Connection, app: str, group: str, revision: dict[str, Any]
) -> set[str]:
    """Hosts that any deployment of ``revision`` in this group has targeted."""
    found: set[str] = set()
    for ids in in_lists(_deployments_of(conn, app, group, revision)):
        rows = conn.execute(select(T.c.target_id).where(T.c.deployment_id.in_(ids)).distinct())
        found.update(row[0] for row in rows)
    return found


def _deployments_of(conn: Connection, app: str, group: str, revision: dict[str, Any]) -> set[str]:
    """The ids of this group's deployments of ``revision``. Each deployment's ``info``
    is read once here: joined to its targets it came once per target, and a
    10,000-host deployment's document decoded 10,000 times took the server's memory
    from 0.4 to 1.6 GiB for the sweeper's outdated-hosts look."""
    rows = conn.execute(
        select(D.c.id, D.c.info).where(and_(D.c.application_name == app, D.c.group_name == group))
    )
    return {deployment_id for deployment_id, info in rows if info.get("revision") == revision}


def agents_heard_from(conn: Connection, names: Sequence[str]) -> list[str]:
    """Of ``names``, the instances whose agent has polled at least once."""
    c = schema.instances.c
    rows = conn.execute(
        select(c.name).where(and_(c.name.in_(list(names)), c.last_seen.is_not(None)))
    )
    return sorted(row[0] for row in rows)
