"""Embedded ECS: time from CreateTaskSet to all its tasks healthy in their target group.

Run: .venv/bin/python bench/task_set_start.py [--counts 3,20] [--runs 2]

Starts a Shipyard server in this process (SQLite, reconciler period 1 s as by default,
no load balancers: memory target groups, so the figure is ECS's own),
which starts its own Podman API service; builds the busybox httpd image; creates a
cluster, a task definition and a CODE_DEPLOY service at desiredCount N whose first task
set is left to settle. Then, ``--runs`` times per count, it creates a second task set
(scale 100 %) on a new target group and measures, polling every 10 ms:

- **registered**: CreateTaskSet to all N targets registered in the group;
- **healthy**: CreateTaskSet to all N targets healthy (a TCP probe reaches each task's
  busybox httpd on its published host port);
- **steady**: CreateTaskSet to DescribeTaskSets answering STEADY_STATE.

It then deletes the task set and waits for it to drain away before the next run. Every
container is removed at the end. Bounded: at most 120 s per run.
"""

from __future__ import annotations

import argparse
import configparser
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shipyard.config import ServerConfig
from shipyard.containers.ecs.images import HTTPD_IMAGE, busybox_httpd
from shipyard.containers.targets import TargetState
from shipyard.containers.targets_memory import MemoryTargetGroups
from shipyard.server.main import start_embedded

RUN_LIMIT = 120.0
POLL = 0.01
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{}/0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(check: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > RUN_LIMIT:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(POLL)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="3,20")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="shipyard-bench-ecs-"))
    server = start_embedded(ServerConfig(data_dir=data_dir, port=free_port(), elb_haproxy="off"))
    ecs_worker = server.services.ecs
    assert ecs_worker is not None and ecs_worker.capacity.podman is not None
    try:
        keys = configparser.ConfigParser()
        keys.read(server.credentials_path)
        ecs = boto3.client(
            "ecs",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=keys["default"]["aws_access_key_id"],
            aws_secret_access_key=keys["default"]["aws_secret_access_key"],
        )
        groups = server.services.target_groups
        assert isinstance(groups, MemoryTargetGroups)
        busybox_httpd(ecs_worker.capacity.client(0))
        ecs.create_cluster(clusterName="bench")
        container = {"name": "web", "image": HTTPD_IMAGE, "portMappings": [{"containerPort": 80}]}
        ecs.register_task_definition(family="bench", containerDefinitions=[container])
        print("tasks | registered | healthy | steady   (medians of", args.runs, "runs)")
        for count in (int(c) for c in args.counts.split(",")):
            rows = [run_count(ecs, groups, count, run) for run in range(args.runs)]
            medians = [statistics.median(column) for column in zip(*rows, strict=True)]
            print(f"{count:5d} | " + " | ".join(f"{m:8.2f} s" for m in medians))
    finally:
        server.stop()
        ecs_worker.capacity.podman.teardown()


def run_count(ecs: Any, groups: MemoryTargetGroups, count: int, run: int) -> tuple[float, ...]:
    service = f"svc{count}"
    first_group, group = TG.format(f"a{count}r{run}"), TG.format(f"b{count}r{run}")
    groups.create(first_group)
    groups.create(group)
    existing = ecs.describe_services(cluster="bench", services=[service])["services"]
    if not existing or existing[0]["status"] != "ACTIVE":
        ecs.create_service(
            cluster="bench",
            serviceName=service,
            taskDefinition="bench",
            desiredCount=count,
            deploymentController={"type": "CODE_DEPLOY"},
            loadBalancers=[
                {"targetGroupArn": first_group, "containerName": "web", "containerPort": 80}
            ],
        )
    wait(lambda: _steady_all(ecs, service), "the service to settle")
    started = time.monotonic()
    created = ecs.create_task_set(
        cluster="bench",
        service=service,
        taskDefinition="bench",
        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 80}],
    )["taskSet"]["id"]
    registered = wait(lambda: len(groups.health(group)) == count, "registration")
    healthy = wait(
        lambda: sum(s is TargetState.HEALTHY for s in groups.health(group).values()) == count,
        "healthy targets",
    )
    steady = wait(lambda: _steady(ecs, service, created), "STEADY_STATE")
    ecs.delete_task_set(cluster="bench", service=service, taskSet=created)
    wait(lambda: not _exists(ecs, service, created), "the task set to drain away")
    return registered - started, healthy - started, steady - started


def _steady(ecs: Any, service: str, set_id: str) -> bool:
    found = ecs.describe_task_sets(cluster="bench", service=service, taskSets=[set_id])
    return bool(found["taskSets"] and found["taskSets"][0]["stabilityStatus"] == "STEADY_STATE")


def _steady_all(ecs: Any, service: str) -> bool:
    sets = ecs.describe_task_sets(cluster="bench", service=service)["taskSets"]
    return all(s["stabilityStatus"] == "STEADY_STATE" for s in sets)


def _exists(ecs: Any, service: str, set_id: str) -> bool:
    return bool(
        ecs.describe_task_sets(cluster="bench", service=service, taskSets=[set_id])["taskSets"]
    )


if __name__ == "__main__":
    main()
