"""CreateTaskSet, DescribeTaskSets, UpdateServicePrimaryTaskSet, UpdateTaskSet,
DeleteTaskSet (services with the CODE_DEPLOY or EXTERNAL controller)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.containers.ecs import lookups, names, render
from shipyard.containers.ecs.task_sets import new_task_set, wake
from shipyard.errors import ApiError
from shipyard.server.context import Call
from shipyard.store import ecs as store
from shipyard.store.ecs import Service, TaskSet

Json = dict[str, Any]
MAX_TASK_SETS = 5  # per service, counting DRAINING ones (an ECS quota)


def create_task_set(call: Call) -> Json:
    body = call.body
    region = call.services.config.region
    now = call.now()
    with call.services.db.tx() as conn:
        _cluster, service = lookups.task_set_service(conn, call)
        arn, definition = lookups.task_definition(conn, region, body.get("taskDefinition"))
        lbs = lookups.load_balancers(
            body.get("loadBalancers"), definition, call.services.target_groups
        )
        if len(store.task_sets(conn, [service.id])) >= MAX_TASK_SETS:
            raise _limit()
        task_set = new_task_set(service, arn, lbs, now, lookups.scale(body.get("scale")))
        external = body.get("externalId")
        if external is not None:
            task_set.doc["externalId"] = str(external)
        task_set.doc["startedBy"] = "CodeDeploy" if _code_deploy(service) else ""
        if "networkConfiguration" in body:
            task_set.doc["networkConfiguration"] = body["networkConfiguration"]
        task_set.doc["tags"] = body.get("tags", [])
        store.insert_task_set(conn, task_set)
        answer = {"taskSet": _render(conn, call, service, task_set)}
    wake(call)
    return answer


def describe_task_sets(call: Call) -> Json:
    wanted = call.body.get("taskSets")
    with call.services.db.tx() as conn:
        _cluster, service = lookups.task_set_service(conn, call)
        sets = store.task_sets(conn, [service.id])
        if wanted is None:
            return {"taskSets": [_render(conn, call, service, ts) for ts in sets], "failures": []}
        if not isinstance(wanted, list):
            raise names.invalid("taskSets must be a list")
        by_id = {ts.id: ts for ts in sets}
        found, failures = [], []
        for reference in wanted:
            ts = by_id.get(names.task_set_id(str(reference)))
            if ts is None:
                failures.append({"arn": str(reference), "reason": "MISSING"})
            else:
                found.append(_render(conn, call, service, ts))
    return {"taskSets": found, "failures": failures}


def update_service_primary_task_set(call: Call) -> Json:
    now = call.now()
    with call.services.db.tx() as conn:
        _cluster, service = lookups.task_set_service(conn, call)
        chosen = _task_set(conn, service, lookups.text(call, "primaryTaskSet", required=True))
        if chosen.status == "DRAINING":
            raise names.invalid("A DRAINING task set cannot become the primary task set.")
        for ts in store.task_sets(conn, [service.id]):
            if ts.status == "PRIMARY" and ts.id != chosen.id:
                ts.status, ts.updated = "ACTIVE", now
                store.save_task_set(conn, ts)
        chosen.status, chosen.updated = "PRIMARY", now
        store.save_task_set(conn, chosen)
        service.doc["taskDefinition"] = chosen.doc["taskDefinition"]
        service.doc["loadBalancers"] = chosen.doc.get("loadBalancers", [])
        service.updated = now
        store.save_service(conn, service)
        answer = {"taskSet": _render(conn, call, service, chosen)}
    wake(call)
    return answer


def update_task_set(call: Call) -> Json:
    now = call.now()
    if "scale" not in call.body:
        raise names.invalid("scale is required")
    scale = lookups.scale(call.body["scale"])
    with call.services.db.tx() as conn:
        _cluster, service = lookups.task_set_service(conn, call)
        ts = _task_set(conn, service, lookups.text(call, "taskSet", required=True))
        if ts.status == "DRAINING":
            raise names.invalid("A DRAINING task set cannot be scaled.")
        ts.doc["scale"], ts.updated = scale, now
        store.save_task_set(conn, ts)
        answer = {"taskSet": _render(conn, call, service, ts)}
    wake(call)
    return answer


def delete_task_set(call: Call) -> Json:
    now = call.now()
    with call.services.db.tx() as conn:
        _cluster, service = lookups.task_set_service(conn, call)
        ts = _task_set(conn, service, lookups.text(call, "taskSet", required=True))
        if ts.status == "PRIMARY" and not call.body.get("force"):
            raise names.invalid(
                "The primary task set cannot be deleted (make another one primary first, or "
                "use force)."
            )
        ts.status, ts.updated = "DRAINING", now
        store.save_task_set(conn, ts)
        answer = {"taskSet": _render(conn, call, service, ts)}
    wake(call)
    return answer


def _task_set(conn: Connection, service: Service, reference: str | None) -> TaskSet:
    wanted = names.task_set_id(reference or "")
    for ts in store.task_sets(conn, [service.id]):
        if ts.id == wanted:
            return ts
    raise names.task_set_not_found(reference or "")


def _code_deploy(service: Service) -> bool:
    return bool(service.doc["deploymentController"]["type"] == "CODE_DEPLOY")


def _render(conn: Connection, call: Call, service: Service, ts: TaskSet) -> Json:
    tasks = store.find_tasks(conn, service_id=service.id, stopped=False)
    return render.task_set(call.services.config.region, service, ts, tasks)


def _limit() -> ApiError:
    return ApiError(
        "LimitExceededException",
        f"A service may have at most {MAX_TASK_SETS} task sets (counting draining ones).",
    )
