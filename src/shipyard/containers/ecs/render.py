"""The wire shapes of clusters, task definitions, services, task sets and tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.containers.ecs import names
from shipyard.containers.ecs.scheduling import (
    STOPPED,
    Counts,
    TaskView,
    computed_desired,
    stability,
)
from shipyard.store.ecs import Service, Task, TaskSet

Json = dict[str, Any]


def cluster(
    region: str, name: str, status: str, doc: Json, tasks: Sequence[Task], services: int
) -> Json:
    running = sum(1 for t in tasks if t.last_status == "RUNNING")
    pending = sum(1 for t in tasks if t.last_status in ("PROVISIONING", "PENDING"))
    return {
        "clusterArn": names.cluster_arn(region, name),
        "clusterName": name,
        "status": status,
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "activeServicesCount": services,
        "statistics": [],
        "tags": doc.get("tags", []),
        "settings": doc.get("settings", []),
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    }


def task_definition(
    region: str, family: str, revision: int, status: str, at: float, doc: Json
) -> Json:
    body = {k: v for k, v in doc.items() if k != "tags"}
    return {
        **body,
        "taskDefinitionArn": names.task_definition_arn(region, family, revision),
        "family": family,
        "revision": revision,
        "status": status,
        "registeredAt": at,
        "compatibilities": ["EC2", "EXTERNAL"],
    }


def task_view(task: Task) -> TaskView:
    return TaskView(task.id, task.last_status, bool(task.doc.get("ready")), task.created)


def live(tasks: Sequence[Task], task_set_id: str) -> list[Task]:
    """The task set's tasks that are meant to run."""
    return [t for t in tasks if t.task_set_id == task_set_id and t.desired_status != STOPPED]


def counts(service: Service, task_set: TaskSet, tasks: Sequence[Task]) -> tuple[int, Counts]:
    desired = desired_of(service, task_set)
    return desired, stability(desired, [task_view(t) for t in live(tasks, task_set.id)])


def desired_of(service: Service, task_set: TaskSet) -> int:
    scale = float(task_set.doc.get("scale", {}).get("value", 100.0))
    status = "DRAINING" if service.status != "ACTIVE" else task_set.status
    return computed_desired(int(service.doc["desiredCount"]), scale, status)


def task_set(region: str, service: Service, ts: TaskSet, tasks: Sequence[Task]) -> Json:
    desired, found = counts(service, ts, tasks)
    doc = ts.doc
    return {
        "id": ts.id,
        "taskSetArn": names.task_set_arn(region, service.cluster, service.name, ts.id),
        "serviceArn": names.service_arn(region, service.cluster, service.name),
        "clusterArn": names.cluster_arn(region, service.cluster),
        "startedBy": doc.get("startedBy", ""),
        "externalId": doc.get("externalId", ""),
        "status": ts.status,
        "taskDefinition": doc["taskDefinition"],
        "computedDesiredCount": desired,
        "pendingCount": found.pending,
        "runningCount": found.running,
        "createdAt": ts.created,
        "updatedAt": ts.updated,
        "launchType": doc.get("launchType", "EC2"),
        "loadBalancers": doc.get("loadBalancers", []),
        "serviceRegistries": [],
        "scale": doc.get("scale", {"value": 100.0, "unit": "PERCENT"}),
        "stabilityStatus": found.stability,
        "stabilityStatusAt": doc.get("stabilityStatusAt", ts.updated),
        "tags": doc.get("tags", []),
        **(
            {"networkConfiguration": doc["networkConfiguration"]}
            if "networkConfiguration" in doc
            else {}
        ),
    }


def deployment(region: str, service: Service, ts: TaskSet, tasks: Sequence[Task]) -> Json:
    """An ECS-controller deployment: Shipyard runs each as a task set of its own."""
    desired, found = counts(service, ts, tasks)
    state = "COMPLETED" if found.stability == "STEADY_STATE" else "IN_PROGRESS"
    if ts.doc.get("failed"):
        state = "FAILED"
    return {
        "id": ts.id,
        "status": "PRIMARY" if ts.status == "PRIMARY" else "ACTIVE",
        "taskDefinition": ts.doc["taskDefinition"],
        "desiredCount": desired,
        "pendingCount": found.pending,
        "runningCount": found.running,
        "failedTasks": int(ts.doc.get("failedTasks", 0)),
        "createdAt": ts.created,
        "updatedAt": ts.updated,
        "launchType": ts.doc.get("launchType", "EC2"),
        "rolloutState": state,
        "rolloutStateReason": ts.doc.get("rolloutStateReason", ""),
    }


def service(
    region: str,
    svc: Service,
    sets: Sequence[TaskSet],
    tasks: Sequence[Task],
    events: Sequence[tuple[int, float, str]],
) -> Json:
    doc = svc.doc
    controller = doc["deploymentController"]["type"]
    mine = [t for t in tasks if t.service_id == svc.id and t.desired_status != STOPPED]
    out: Json = {
        "serviceArn": names.service_arn(region, svc.cluster, svc.name),
        "serviceName": svc.name,
        "clusterArn": names.cluster_arn(region, svc.cluster),
        "loadBalancers": doc.get("loadBalancers", []),
        "serviceRegistries": [],
        "status": svc.status,
        "desiredCount": doc["desiredCount"],
        "runningCount": sum(1 for t in mine if t.last_status == "RUNNING"),
        "pendingCount": sum(1 for t in mine if t.last_status in ("PROVISIONING", "PENDING")),
        "launchType": doc.get("launchType", "EC2"),
        "deploymentConfiguration": doc.get("deploymentConfiguration", {}),
        "deploymentController": doc["deploymentController"],
        "events": [
            {"id": str(event_id), "createdAt": at, "message": message}
            for event_id, at, message in events
        ],
        "createdAt": svc.created,
        "placementConstraints": [],
        "placementStrategy": [],
        "schedulingStrategy": "REPLICA",
        "healthCheckGracePeriodSeconds": doc.get("healthCheckGracePeriodSeconds", 0),
        "enableECSManagedTags": False,
        "propagateTags": "NONE",
        "enableExecuteCommand": False,
        "tags": doc.get("tags", []),
        "createdBy": doc.get("createdBy", ""),
    }
    if "networkConfiguration" in doc:
        out["networkConfiguration"] = doc["networkConfiguration"]
    if controller == "ECS":
        out["taskDefinition"] = doc.get("taskDefinition", "")
        out["deployments"] = [deployment(region, svc, ts, tasks) for ts in reversed(sets)]
        out["taskSets"] = []
    else:
        if doc.get("taskDefinition"):
            out["taskDefinition"] = doc["taskDefinition"]
        out["taskSets"] = [task_set(region, svc, ts, tasks) for ts in sets]
        out["deployments"] = []
    return out


def task(region: str, t: Task, service_name: str, task_set_id: str) -> Json:
    doc = t.doc
    out: Json = {
        "taskArn": names.task_arn(region, t.cluster, t.id),
        "clusterArn": names.cluster_arn(region, t.cluster),
        "taskDefinitionArn": doc["taskDefinitionArn"],
        "lastStatus": t.last_status,
        "desiredStatus": t.desired_status,
        "healthStatus": doc.get("healthStatus", "UNKNOWN"),
        "startedBy": task_set_id,
        "group": f"service:{service_name}",
        "launchType": doc.get("launchType", "EC2"),
        "containers": [_container(region, t, c) for c in doc.get("containers", [])],
        "createdAt": t.created,
        "version": int(doc.get("version", 1)),
        "cpu": doc.get("cpu"),
        "memory": doc.get("memory"),
        "attachments": [],
        "tags": [],
    }
    for key in ("startedAt", "stoppingAt", "stoppedAt", "stopCode", "stoppedReason"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    return {k: v for k, v in out.items() if v is not None}


def _container(region: str, t: Task, c: Json) -> Json:
    out: Json = {
        "containerArn": names.task_arn(region, t.cluster, t.id).replace(":task/", ":container/")
        + "/"
        + c["name"],
        "taskArn": names.task_arn(region, t.cluster, t.id),
        "name": c["name"],
        "image": c["image"],
        "lastStatus": c.get("lastStatus", "PENDING"),
        "networkBindings": c.get("networkBindings", []),
        "networkInterfaces": [],
        "healthStatus": c.get("healthStatus", "UNKNOWN"),
    }
    for key in ("exitCode", "reason", "runtimeId"):
        if c.get(key) is not None:
            out[key] = c[key]
    return out
