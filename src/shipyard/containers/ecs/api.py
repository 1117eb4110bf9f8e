"""The ECS API (JSON 1.1, ``AmazonEC2ContainerServiceV20141113.<Op>``) on the server's
endpoint.

server/app.py routes a ``POST /`` whose target has this prefix here, after the same
SigV4 checks as the CodeDeploy API but for the signing name ``ecs``. Roles apply as
``server.permissions.ecs_required_role`` says; every successful change is audited as
``ecs:<Operation>``. Errors leave in the JSON 1.1 shape (``__type``, ``message``).
"""

from __future__ import annotations

import inspect
from typing import Any

from shipyard.containers.ecs import (
    cluster_ops,
    service_ops,
    task_definition_ops,
    task_ops,
    task_set_ops,
)
from shipyard.errors import ApiError
from shipyard.server import permissions
from shipyard.server.context import Call, Handler, Principal, Services
from shipyard.store import audit

PREFIX = "AmazonEC2ContainerServiceV20141113."
SIGNING_NAMES = frozenset({"ecs"})

OPERATIONS: dict[str, Handler] = {
    "CreateCluster": cluster_ops.create_cluster,
    "DescribeClusters": cluster_ops.describe_clusters,
    "DeleteCluster": cluster_ops.delete_cluster,
    "ListClusters": cluster_ops.list_clusters,
    "RegisterTaskDefinition": task_definition_ops.register_task_definition,
    "DescribeTaskDefinition": task_definition_ops.describe_task_definition,
    "DeregisterTaskDefinition": task_definition_ops.deregister_task_definition,
    "ListTaskDefinitions": task_definition_ops.list_task_definitions,
    "CreateService": service_ops.create_service,
    "DescribeServices": service_ops.describe_services,
    "UpdateService": service_ops.update_service,
    "DeleteService": service_ops.delete_service,
    "ListServices": service_ops.list_services,
    "CreateTaskSet": task_set_ops.create_task_set,
    "DescribeTaskSets": task_set_ops.describe_task_sets,
    "UpdateServicePrimaryTaskSet": task_set_ops.update_service_primary_task_set,
    "UpdateTaskSet": task_set_ops.update_task_set,
    "DeleteTaskSet": task_set_ops.delete_task_set,
    "ListTasks": task_ops.list_tasks,
    "DescribeTasks": task_ops.describe_tasks,
    "StopTask": task_ops.stop_task,
}


async def run(
    services: Services, principal: Principal, operation: str, body: dict[str, Any]
) -> dict[str, Any]:
    if not permissions.ecs_allowed(principal, operation):
        raise ApiError("AccessDeniedException", permissions.ecs_denial(principal, operation), 403)
    result = OPERATIONS[operation](Call(services, principal, body))
    if inspect.isawaitable(result):
        result = await result
    if permissions.ecs_required_role(operation) != permissions.VIEWER:
        with services.db.tx() as conn:
            audit.record(
                conn,
                services.clock(),
                principal.kind,
                principal.name,
                f"ecs:{operation}",
                _subject(body),
            )
    return result


def _subject(body: dict[str, Any]) -> str:
    """What the change was about: the most specific name the request gives."""
    for key in ("taskSet", "primaryTaskSet", "task", "service", "serviceName", "family"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return f"ecs/{value}"
    cluster = body.get("cluster") or body.get("clusterName")
    return f"ecs/cluster/{cluster}" if isinstance(cluster, str) else "ecs"
