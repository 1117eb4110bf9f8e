"""ListTasks, DescribeTasks, StopTask. Tasks are started only by services' task sets
(no RunTask); StopTask stops one, and its task set starts a replacement."""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs import cluster_ops, lookups, names, render
from shipyard.containers.ecs.scheduling import STOPPED
from shipyard.containers.ecs.task_sets import wake
from shipyard.server.context import Call
from shipyard.store import ecs as store
from shipyard.store.ecs import Task

Json = dict[str, Any]
STATUSES = ("RUNNING", "PENDING", "STOPPED")


def list_tasks(call: Call) -> Json:
    body = call.body
    region = call.services.config.region
    desired = body.get("desiredStatus", "RUNNING")
    if desired not in STATUSES:
        raise names.invalid("desiredStatus must be RUNNING, PENDING or STOPPED")
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        service_id = None
        if body.get("serviceName"):
            service_id = lookups.service(conn, cluster, str(body["serviceName"]), active=False).id
        tasks = store.find_tasks(
            conn, cluster=cluster, service_id=service_id, stopped=desired == STOPPED
        )
        family = body.get("family")
        started_by = body.get("startedBy")
        if family:
            tasks = [t for t in tasks if _family(t) == family]
        if started_by:
            tasks = [t for t in tasks if t.task_set_id == started_by]
    arns = [names.task_arn(region, t.cluster, t.id) for t in tasks]
    return cluster_ops.page(call, arns, "taskArns")


def describe_tasks(call: Call) -> Json:
    wanted = call.body.get("tasks")
    if not isinstance(wanted, list) or not wanted or len(wanted) > 100:
        raise names.invalid("tasks must list 1 to 100 task ids or ARNs")
    region = call.services.config.region
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        ids = [names.last_part(str(reference), "task") for reference in wanted]
        found = {t.id: t for t in store.get_tasks(conn, ids) if t.cluster == cluster}
        services = {t.service_id: store.get_service(conn, t.service_id) for t in found.values()}
    tasks, failures = [], []
    for task_id in ids:
        task = found.get(task_id)
        if task is None:
            failures.append({"arn": names.task_arn(region, cluster, task_id), "reason": "MISSING"})
            continue
        service = services.get(task.service_id)
        tasks.append(render.task(region, task, service.name if service else "", task.task_set_id))
    return {"tasks": tasks, "failures": failures}


def stop_task(call: Call) -> Json:
    region = call.services.config.region
    reference = lookups.text(call, "task", required=True) or ""
    reason = call.body.get("reason") or "Task stopped by the user"
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        task_id = names.last_part(reference, "task")
        found = [t for t in store.get_tasks(conn, [task_id]) if t.cluster == cluster]
        if not found:
            raise names.invalid("The referenced task was not found.")
        task = found[0]
        if task.desired_status != STOPPED:
            task.desired_status = STOPPED
            task.doc.update(stopCode="UserInitiated", stoppedReason=str(reason)[:255])
            task.updated = call.now()
            store.save_task(conn, task)
        service = store.get_service(conn, task.service_id)
        answer = {
            "task": render.task(region, task, service.name if service else "", task.task_set_id)
        }
    wake(call)
    return answer


def _family(task: Task) -> str:
    arn = str(task.doc["taskDefinitionArn"])
    return arn.rsplit("/", 1)[-1].split(":")[0]
