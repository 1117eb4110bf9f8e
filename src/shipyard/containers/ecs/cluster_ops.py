"""CreateCluster, DescribeClusters, DeleteCluster, ListClusters.

A cluster is a name: its capacity is the server's Docker endpoints (ecs_endpoints), the
same for every cluster.
"""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs import lookups, names, render
from shipyard.errors import ApiError
from shipyard.server.context import Call
from shipyard.store import ecs as store

Json = dict[str, Any]


def create_cluster(call: Call) -> Json:
    name = names.cluster_name(lookups.text(call, "clusterName"))
    doc = {"tags": call.body.get("tags", []), "settings": call.body.get("settings", [])}
    with call.services.db.tx() as conn:
        found = store.get_cluster(conn, name)
        if found is None or found[0] != "ACTIVE":
            store.put_cluster(conn, name, doc, call.now())
        return {"cluster": _describe(conn, call, name)}


def describe_clusters(call: Call) -> Json:
    wanted = call.body.get("clusters") or [names.DEFAULT_CLUSTER]
    if not isinstance(wanted, list) or len(wanted) > 100:
        raise names.invalid("clusters must be a list of at most 100 names or ARNs")
    region = call.services.config.region
    clusters, failures = [], []
    with call.services.db.tx() as conn:
        for reference in wanted:
            name = names.cluster_name(reference)
            if store.get_cluster(conn, name) is None:
                failures.append({"arn": names.cluster_arn(region, name), "reason": "MISSING"})
            else:
                clusters.append(_describe(conn, call, name))
    return {"clusters": clusters, "failures": failures}


def delete_cluster(call: Call) -> Json:
    with call.services.db.tx() as conn:
        name = lookups.active_cluster(conn, lookups.text(call, "cluster", required=True))
        if store.live_services(conn, name):
            raise ApiError(
                "ClusterContainsServicesException",
                "The Cluster cannot be deleted while Services are active.",
            )
        if store.find_tasks(conn, cluster=name, stopped=False):
            raise ApiError(
                "ClusterContainsTasksException",
                "The Cluster cannot be deleted while Tasks are active.",
            )
        store.set_cluster_status(conn, name, "INACTIVE")
        return {"cluster": _describe(conn, call, name)}


def list_clusters(call: Call) -> Json:
    region = call.services.config.region
    with call.services.db.tx() as conn:
        arns = [names.cluster_arn(region, name) for name in store.list_clusters(conn)]
    return page(call, arns, "clusterArns")


def _describe(conn: Any, call: Call, name: str) -> Json:
    found = store.get_cluster(conn, name)
    assert found is not None
    status, _created, doc = found
    tasks = store.find_tasks(conn, cluster=name, stopped=False)
    services = len([s for s in store.live_services(conn, name) if s.status == "ACTIVE"])
    return render.cluster(call.services.config.region, name, status, doc, tasks, services)


def page(call: Call, items: list[str], key: str) -> Json:
    """One page of ``items``; nextToken is the index to continue from."""
    token = call.body.get("nextToken") or "0"
    size = call.body.get("maxResults") or 100
    if not isinstance(token, str) or not token.isdigit():
        raise names.invalid("Invalid nextToken")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 100:
        raise names.invalid("maxResults must be between 1 and 100")
    start = int(token)
    answer: Json = {key: items[start : start + size]}
    if start + size < len(items):
        answer["nextToken"] = str(start + size)
    return answer
