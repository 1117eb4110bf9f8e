"""What the task-set and service operations share: a new task set, waking the
reconciler."""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs import names
from shipyard.server.context import Call
from shipyard.store.ecs import Service, TaskSet

Json = dict[str, Any]


def new_task_set(
    service: Service,
    task_definition_arn: str,
    load_balancers: list[Json],
    now: float,
    scale: Json | None = None,
) -> TaskSet:
    doc: Json = {
        "taskDefinition": task_definition_arn,
        "loadBalancers": load_balancers,
        "scale": scale or {"value": 100.0, "unit": "PERCENT"},
        "launchType": service.doc.get("launchType", "EC2"),
        "stabilityStatusAt": now,
    }
    if "networkConfiguration" in service.doc:
        doc["networkConfiguration"] = service.doc["networkConfiguration"]
    return TaskSet(names.new_task_set_id(), service.id, "ACTIVE", now, now, doc)


def wake(call: Call) -> None:
    """Tell the reconciler that something changed, so it acts now, not at its next tick."""
    if call.services.ecs is not None:
        call.services.ecs.wake()
