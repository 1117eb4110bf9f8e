"""CreateService, DescribeServices, UpdateService, DeleteService, ListServices.

Every controller runs its tasks in task sets. CODE_DEPLOY: CreateService makes the first
(PRIMARY) task set from its task definition and loadBalancers; later ones come from
CreateTaskSet. EXTERNAL: task sets only from CreateTaskSet. ECS: each new task definition
(or forceNewDeployment) is a new PRIMARY task set shown as a deployment, and the
reconciler drains the older ones once it is steady.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.containers.ecs import cluster_ops, lookups, names, render
from shipyard.containers.ecs.task_sets import new_task_set, wake
from shipyard.server.context import Call
from shipyard.store import ecs as store
from shipyard.store.ecs import Service

Json = dict[str, Any]
CONTROLLERS = ("ECS", "CODE_DEPLOY", "EXTERNAL")
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")


def create_service(call: Call) -> Json:
    body = call.body
    name = lookups.text(call, "serviceName", required=True) or ""
    if not names.NAME.fullmatch(name):
        raise names.invalid("serviceName may contain only letters, numbers, hyphens, underscores")
    controller = (body.get("deploymentController") or {}).get("type", "ECS")
    if controller not in CONTROLLERS:
        raise names.invalid(f"deploymentController.type must be one of {', '.join(CONTROLLERS)}")
    launch_type = body.get("launchType", "EC2")
    if launch_type not in LAUNCH_TYPES:
        raise names.invalid(f"launchType must be one of {', '.join(LAUNCH_TYPES)}")
    if body.get("schedulingStrategy", "REPLICA") != "REPLICA":
        raise names.unsupported("Only the REPLICA scheduling strategy is supported here.")
    desired = lookups.desired_count(body.get("desiredCount"), 0)
    now = call.now()
    region = call.services.config.region
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        existing = store.find_service(conn, cluster, name)
        if existing is not None and existing.status != "INACTIVE":
            raise names.invalid("Creation of service was not idempotent.")
        doc: Json = {
            "desiredCount": desired,
            "deploymentController": {"type": controller},
            "launchType": launch_type,
            "deploymentConfiguration": body.get("deploymentConfiguration")
            or {"maximumPercent": 200, "minimumHealthyPercent": 100},
            "healthCheckGracePeriodSeconds": _grace(body.get("healthCheckGracePeriodSeconds")),
            "tags": body.get("tags", []),
            "createdBy": f"{call.principal.kind}/{call.principal.name}",
        }
        if "networkConfiguration" in body:
            doc["networkConfiguration"] = body["networkConfiguration"]
        definition: Json | None = None
        if controller != "EXTERNAL" or body.get("taskDefinition"):
            arn, definition = lookups.task_definition(conn, region, body.get("taskDefinition"))
            doc["taskDefinition"] = arn
        lbs = body.get("loadBalancers")
        if lbs and definition is None:
            raise names.invalid("loadBalancers need a taskDefinition")
        doc["loadBalancers"] = lookups.load_balancers(
            lbs, definition or {}, call.services.target_groups
        )
        service = Service(names.new_service_id(), cluster, name, "ACTIVE", now, now, doc)
        store.insert_service(conn, service)
        if controller != "EXTERNAL":
            started_by = "CodeDeploy" if controller == "CODE_DEPLOY" else ""
            first = new_task_set(service, doc["taskDefinition"], doc["loadBalancers"], now)
            first.status = "PRIMARY"
            first.doc["startedBy"] = started_by
            store.insert_task_set(conn, first)
        answer = {"service": describe(conn, call, service)}
    wake(call)
    return answer


def describe_services(call: Call) -> Json:
    wanted = call.body.get("services")
    if not isinstance(wanted, list) or not wanted or len(wanted) > 10:
        raise names.invalid("services must list 1 to 10 service names or ARNs")
    region = call.services.config.region
    found, failures = [], []
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        for reference in wanted:
            name = names.last_part(str(reference), "service")
            service = store.find_service(conn, cluster, name)
            if service is None:
                arn = names.service_arn(region, cluster, name)
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(describe(conn, call, service))
    return {"services": found, "failures": failures}


def update_service(call: Call) -> Json:
    body = call.body
    region = call.services.config.region
    now = call.now()
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        service = lookups.service(conn, cluster, lookups.text(call, "service", required=True) or "")
        doc = service.doc
        controller = doc["deploymentController"]["type"]
        asked = (body.get("deploymentController") or {}).get("type", controller)
        if asked != controller:
            raise names.invalid("Changing the deployment controller is not supported here.")
        if "desiredCount" in body:
            doc["desiredCount"] = lookups.desired_count(body["desiredCount"])
        if "healthCheckGracePeriodSeconds" in body:
            doc["healthCheckGracePeriodSeconds"] = _grace(body["healthCheckGracePeriodSeconds"])
        if "deploymentConfiguration" in body:
            doc["deploymentConfiguration"] = body["deploymentConfiguration"]
        redeploy = [
            k for k in ("taskDefinition", "loadBalancers", "networkConfiguration") if k in body
        ]
        if redeploy or body.get("forceNewDeployment"):
            if controller != "ECS":
                how = "AWS CodeDeploy" if controller == "CODE_DEPLOY" else "CreateTaskSet"
                raise names.invalid(
                    f"Unable to update {', '.join(redeploy) or 'the deployment'} on a service "
                    f"with a {controller} deployment controller. Use {how} for a new deployment."
                )
            _new_deployment(conn, call, service, region, now)
        service.updated = now
        store.save_service(conn, service)
        answer = {"service": describe(conn, call, service)}
    wake(call)
    return answer


def _new_deployment(
    conn: Connection, call: Call, service: Service, region: str, now: float
) -> None:
    doc = service.doc
    arn, definition = lookups.task_definition(
        conn, region, call.body.get("taskDefinition", doc["taskDefinition"])
    )
    lbs = call.body.get("loadBalancers", doc["loadBalancers"])
    doc["loadBalancers"] = lookups.load_balancers(lbs, definition, call.services.target_groups)
    doc["taskDefinition"] = arn
    if "networkConfiguration" in call.body:
        doc["networkConfiguration"] = call.body["networkConfiguration"]
    for old in store.task_sets(conn, [service.id]):
        if old.status == "PRIMARY":
            old.status, old.updated = "ACTIVE", now
            store.save_task_set(conn, old)
    fresh = new_task_set(service, arn, doc["loadBalancers"], now)
    fresh.status = "PRIMARY"
    fresh.doc["startedBy"] = "ecs-svc"
    store.insert_task_set(conn, fresh)


def delete_service(call: Call) -> Json:
    now = call.now()
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        service = lookups.service(conn, cluster, lookups.text(call, "service", required=True) or "")
        running = store.find_tasks(conn, service_id=service.id, stopped=False)
        if (service.doc["desiredCount"] > 0 or running) and not call.body.get("force"):
            raise names.invalid(
                "The service cannot be stopped while it is scaled above 0 or has running "
                "tasks (set desiredCount to 0 first, or use force)."
            )
        service.status, service.updated = "DRAINING", now
        service.doc["desiredCount"] = 0
        store.save_service(conn, service)
        store.add_event(conn, service.id, f"(service {service.name}) is being deleted.", now)
        answer = {"service": describe(conn, call, service)}
    wake(call)
    return answer


def list_services(call: Call) -> Json:
    region = call.services.config.region
    launch_type = call.body.get("launchType")
    with call.services.db.tx() as conn:
        cluster = lookups.active_cluster(conn, lookups.text(call, "cluster"))
        found = store.live_services(conn, cluster)
    arns = [
        names.service_arn(region, s.cluster, s.name)
        for s in found
        if launch_type in (None, s.doc.get("launchType"))
    ]
    return cluster_ops.page(call, arns, "serviceArns")


def _grace(raw: Any) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 2147483647:
        raise names.invalid("healthCheckGracePeriodSeconds must be a non-negative integer")
    return raw


def describe(conn: Connection, call: Call, service: Service) -> Json:
    sets = store.task_sets(conn, [service.id])
    tasks = store.find_tasks(conn, service_id=service.id, stopped=False)
    events = store.events(conn, service.id)
    return render.service(call.services.config.region, service, sets, tasks, events)
