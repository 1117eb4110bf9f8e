"""A task's launch from its task definition, and its doc once started (pure)."""

from __future__ import annotations

from typing import Any

from shipyard.containers.ecs.capacity import ContainerLaunch, Started, TaskLaunch
from shipyard.containers.targets import Target

Json = dict[str, Any]


def launch(task_id: str, family: str, revision: int, definition: Json) -> TaskLaunch:
    containers = []
    for c in definition["containerDefinitions"]:
        containers.append(
            ContainerLaunch(
                name=c["name"],
                image=c["image"],
                command=c.get("command"),
                entry_point=c.get("entryPoint"),
                environment={pair["name"]: pair["value"] for pair in c.get("environment", [])},
                ports=[
                    (
                        p["containerPort"],
                        0 if definition["networkMode"] == "awsvpc" else p["hostPort"],
                        p["protocol"],
                    )
                    for p in c["portMappings"]
                ],
                memory_mib=c.get("memory"),
                cpu_units=c.get("cpu"),
            )
        )
    prefix = f"ecs-{family[:100]}-{revision}-{task_id[:12]}"
    return TaskLaunch(task_id, prefix, containers)


def initial_doc(arn: str, definition: Json, launch_type: str) -> Json:
    """A new task's doc: its containers as the definition names them, not yet started."""
    return {
        "taskDefinitionArn": arn,
        "launchType": launch_type,
        "cpu": definition.get("cpu"),
        "memory": definition.get("memory"),
        "containers": [
            {
                "name": c["name"],
                "image": c["image"],
                "essential": c["essential"],
                "lastStatus": "PENDING",
                "healthStatus": "UNKNOWN",
            }
            for c in definition["containerDefinitions"]
        ],
        "healthStatus": "UNKNOWN",
        "healthChecks": {
            c["name"]: c["healthCheck"]
            for c in definition["containerDefinitions"]
            if c.get("healthCheck") and c["essential"]
        },
        "targets": [],
        "version": 1,
    }


def record_start(doc: Json, started: Started) -> None:
    doc["endpoint"] = started.endpoint
    doc["address"] = started.target_address
    for container in doc["containers"]:
        found = started.containers[container["name"]]
        container["runtimeId"] = found.id
        container["lastStatus"] = "RUNNING"
        container["networkBindings"] = [
            {
                "bindIP": started.target_address,
                "containerPort": b.container_port,
                "hostPort": b.host_port,
                "protocol": b.protocol,
            }
            for b in found.bindings
        ]


def targets(doc: Json, load_balancers: list[Json]) -> list[tuple[str, Target]]:
    """(target group ARN, target) for each of the task set's load balancers."""
    out = []
    for lb in load_balancers:
        for container in doc["containers"]:
            if container["name"] != lb["containerName"]:
                continue
            for binding in container.get("networkBindings", []):
                if binding["containerPort"] == lb["containerPort"]:
                    target = Target(doc["address"], int(binding["hostPort"]))
                    out.append((lb["targetGroupArn"], target))
    return out


def runtime_ids(doc: Json) -> list[str]:
    return [c["runtimeId"] for c in doc["containers"] if c.get("runtimeId")]
