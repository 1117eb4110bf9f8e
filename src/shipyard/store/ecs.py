"""The embedded ECS's rows: clusters, task definitions, services (and their events),
task sets and tasks. Docs hold the API's members the columns do not; ARNs are not
stored (they are built from names and the server's region)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from shipyard.store import schema

Doc = dict[str, Any]
EVENTS_KEPT = 100  # per service; DescribeServices shows the newest

_cl = schema.ecs_clusters.c
_td = schema.ecs_task_definitions.c
_sv = schema.ecs_services.c
_ev = schema.ecs_service_events.c
_ts = schema.ecs_task_sets.c
_tk = schema.ecs_tasks.c


@dataclass
class Service:
    id: str
    cluster: str
    name: str
    status: str
    created: float
    updated: float
    doc: Doc


@dataclass
class TaskSet:
    id: str
    service_id: str
    status: str
    created: float
    updated: float
    doc: Doc


@dataclass
class Task:
    id: str
    cluster: str
    service_id: str
    task_set_id: str
    last_status: str
    desired_status: str
    created: float
    updated: float
    doc: Doc


# ---- clusters -------------------------------------------------------------------------


def get_cluster(conn: Connection, name: str) -> tuple[str, float, Doc] | None:
    """(status, created, doc) of the cluster, None if it was never created."""
    row = conn.execute(select(_cl.status, _cl.created, _cl.doc).where(_cl.name == name)).first()
    return None if row is None else (row.status, row.created, dict(row.doc))


def put_cluster(conn: Connection, name: str, doc: Doc, now: float) -> None:
    """Create the cluster, or make an INACTIVE one of that name ACTIVE again."""
    table = schema.ecs_clusters
    values = {"status": "ACTIVE", "created": now, "doc": doc}
    if not conn.execute(table.update().where(_cl.name == name).values(**values)).rowcount:
        conn.execute(table.insert().values(name=name, **values))


def set_cluster_status(conn: Connection, name: str, status: str) -> None:
    conn.execute(schema.ecs_clusters.update().where(_cl.name == name).values(status=status))


def list_clusters(conn: Connection) -> list[str]:
    query = select(_cl.name).where(_cl.status == "ACTIVE").order_by(_cl.name)
    return list(conn.execute(query).scalars())


# ---- task definitions ------------------------------------------------------------------


def register_task_definition(conn: Connection, family: str, doc: Doc, now: float) -> int:
    """Store the next revision of ``family``; its number."""
    last = conn.execute(select(func.max(_td.revision)).where(_td.family == family)).scalar()
    revision = int(last or 0) + 1
    conn.execute(
        schema.ecs_task_definitions.insert().values(
            family=family, revision=revision, status="ACTIVE", registered=now, doc=doc
        )
    )
    return revision


def get_task_definition(
    conn: Connection, family: str, revision: int | None
) -> tuple[int, str, float, Doc] | None:
    """(revision, status, registered, doc); without a revision the latest ACTIVE one."""
    query = select(_td.revision, _td.status, _td.registered, _td.doc).where(_td.family == family)
    if revision is None:
        query = query.where(_td.status == "ACTIVE").order_by(_td.revision.desc()).limit(1)
    else:
        query = query.where(_td.revision == revision)
    row = conn.execute(query).first()
    return None if row is None else (row.revision, row.status, row.registered, dict(row.doc))


def set_task_definition_status(conn: Connection, family: str, revision: int, status: str) -> None:
    table = schema.ecs_task_definitions
    where = (_td.family == family) & (_td.revision == revision)
    conn.execute(table.update().where(where).values(status=status))


def list_task_definitions(
    conn: Connection, family: str | None, status: str, descending: bool
) -> list[tuple[str, int]]:
    query = select(_td.family, _td.revision).where(_td.status == status)
    if family:
        query = query.where(_td.family == family)
    order = (_td.family.desc(), _td.revision.desc()) if descending else (_td.family, _td.revision)
    return [(row.family, row.revision) for row in conn.execute(query.order_by(*order))]


# ---- services and their events ---------------------------------------------------------


def _service(row: Any) -> Service:
    return Service(
        row.id, row.cluster, row.name, row.status, row.created, row.updated, dict(row.doc)
    )


def find_service(conn: Connection, cluster: str, name: str) -> Service | None:
    """The service of that name: the live one, else the newest INACTIVE one."""
    rows = conn.execute(
        select(schema.ecs_services)
        .where((_sv.cluster == cluster) & (_sv.name == name))
        .order_by(_sv.created.desc())
    ).all()
    live = [row for row in rows if row.status != "INACTIVE"]
    chosen = live[0] if live else (rows[0] if rows else None)
    return None if chosen is None else _service(chosen)


def get_service(conn: Connection, service_id: str) -> Service | None:
    row = conn.execute(select(schema.ecs_services).where(_sv.id == service_id)).first()
    return None if row is None else _service(row)


def insert_service(conn: Connection, service: Service) -> None:
    conn.execute(schema.ecs_services.insert().values(**service.__dict__))


def save_service(conn: Connection, service: Service) -> None:
    values = {"status": service.status, "updated": service.updated, "doc": service.doc}
    conn.execute(schema.ecs_services.update().where(_sv.id == service.id).values(**values))


def live_services(conn: Connection, cluster: str | None = None) -> list[Service]:
    """ACTIVE and DRAINING services (of one cluster, or all), oldest first."""
    query = select(schema.ecs_services).where(_sv.status != "INACTIVE")
    if cluster is not None:
        query = query.where(_sv.cluster == cluster)
    return [_service(row) for row in conn.execute(query.order_by(_sv.created, _sv.id))]


def add_event(conn: Connection, service_id: str, message: str, now: float) -> None:
    conn.execute(
        schema.ecs_service_events.insert().values(
            service_id=service_id, created=now, message=message
        )
    )
    old = (
        select(_ev.id)
        .where(_ev.service_id == service_id)
        .order_by(_ev.id.desc())
        .offset(EVENTS_KEPT)
        .limit(1)
    )
    cut = conn.execute(old).scalar()
    if cut is not None:
        where = (_ev.service_id == service_id) & (_ev.id <= cut)
        conn.execute(schema.ecs_service_events.delete().where(where))


def events(conn: Connection, service_id: str) -> list[tuple[int, float, str]]:
    """(id, created, message), newest first."""
    query = (
        select(_ev.id, _ev.created, _ev.message)
        .where(_ev.service_id == service_id)
        .order_by(_ev.id.desc())
        .limit(EVENTS_KEPT)
    )
    return [(row.id, row.created, row.message) for row in conn.execute(query)]


def last_event(conn: Connection, service_id: str) -> str | None:
    found = events(conn, service_id)
    return found[0][2] if found else None


# ---- task sets -------------------------------------------------------------------------


def _task_set(row: Any) -> TaskSet:
    return TaskSet(row.id, row.service_id, row.status, row.created, row.updated, dict(row.doc))


def task_sets(conn: Connection, service_ids: Iterable[str]) -> list[TaskSet]:
    """The task sets of these services, oldest first."""
    ids = list(service_ids)
    if not ids:
        return []
    query = select(schema.ecs_task_sets).where(_ts.service_id.in_(ids))
    return [_task_set(row) for row in conn.execute(query.order_by(_ts.created, _ts.id))]


def insert_task_set(conn: Connection, task_set: TaskSet) -> None:
    conn.execute(schema.ecs_task_sets.insert().values(**task_set.__dict__))


def save_task_set(conn: Connection, task_set: TaskSet) -> None:
    values = {"status": task_set.status, "updated": task_set.updated, "doc": task_set.doc}
    conn.execute(schema.ecs_task_sets.update().where(_ts.id == task_set.id).values(**values))


def delete_task_set(conn: Connection, task_set_id: str) -> None:
    conn.execute(schema.ecs_task_sets.delete().where(_ts.id == task_set_id))


# ---- tasks -----------------------------------------------------------------------------


def _task(row: Any) -> Task:
    return Task(
        row.id,
        row.cluster,
        row.service_id,
        row.task_set_id,
        row.last_status,
        row.desired_status,
        row.created,
        row.updated,
        dict(row.doc),
    )


def insert_task(conn: Connection, task: Task) -> None:
    conn.execute(schema.ecs_tasks.insert().values(**task.__dict__))


def save_task(conn: Connection, task: Task) -> None:
    values = {
        "last_status": task.last_status,
        "desired_status": task.desired_status,
        "updated": task.updated,
        "doc": task.doc,
    }
    conn.execute(schema.ecs_tasks.update().where(_tk.id == task.id).values(**values))


def get_tasks(conn: Connection, ids: Sequence[str]) -> list[Task]:
    if not ids:
        return []
    query = select(schema.ecs_tasks).where(_tk.id.in_(list(ids)))
    return [_task(row) for row in conn.execute(query)]


def find_tasks(
    conn: Connection,
    *,
    cluster: str | None = None,
    service_id: str | None = None,
    stopped: bool | None = None,
) -> list[Task]:
    """Tasks, oldest first; ``stopped`` True/False: only those whose desired status is
    (or is not) STOPPED."""
    query = select(schema.ecs_tasks)
    if cluster is not None:
        query = query.where(_tk.cluster == cluster)
    if service_id is not None:
        query = query.where(_tk.service_id == service_id)
    if stopped is True:
        query = query.where(_tk.desired_status == "STOPPED")
    elif stopped is False:
        query = query.where(_tk.desired_status != "STOPPED")
    return [_task(row) for row in conn.execute(query.order_by(_tk.created, _tk.id))]


def unfinished_tasks(conn: Connection) -> list[Task]:
    """Every task whose container may still exist (lastStatus not STOPPED)."""
    query = select(schema.ecs_tasks).where(_tk.last_status != "STOPPED")
    return [_task(row) for row in conn.execute(query.order_by(_tk.created, _tk.id))]


def forget_stopped_tasks(conn: Connection, before: float) -> None:
    """Stopped tasks stay visible for a while (ECS: at least an hour), then go."""
    where = (_tk.last_status == "STOPPED") & (_tk.updated < before)
    conn.execute(schema.ecs_tasks.delete().where(where))
