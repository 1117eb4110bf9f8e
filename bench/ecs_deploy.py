"""ECS deployments: what a deployment costs on top of the waits its config asks for, and
how fast a decided shift step reaches the production listener.

Run: .venv/bin/python bench/ecs_deploy.py [--runs 3] [--minute 0.5] [--backend both]

Starts a Shipyard server in this process (SQLite, ``minute_seconds`` = ``--minute``),
builds a CODE_DEPLOY service of 3 tasks behind a load balancer (tests/ecs_support.py)
and deploys a new task definition ``--runs`` times with each config below, on

- **moto**: ``containers_backend: aws`` pointed at moto's server on loopback (the AWS
  path: a second implementation of the ECS and ELBv2 APIs);
- **embedded**: the server's own ECS (Podman containers of the busybox httpd image) and
  ELBv2 (HAProxy, retries off), with a load generator on the production listener the
  whole time: **requests lost** are its failed requests.

The configs:

- ``CodeDeployDefault.ECSAllAtOnce``: no configured wait, so the whole time from
  CreateDeployment to Succeeded is overhead (the eight events, CreateTaskSet, the
  steady-state poll, ModifyListener twice, UpdateServicePrimaryTaskSet, DeleteTaskSet,
  and the engine's steps between them);
- ``CodeDeployDefault.ECSCanary10Percent5Minutes``: 5 scaled minutes configured; the
  overhead is the total less that.

While a deployment runs, this process polls what the engine decided (the runner's state)
and DescribeListeners, each about every 2 ms, and reports the **shift latency**: from
the engine deciding a weight to the listener forwarding it.

Bounded: ``--runs`` deployments per config, each at most 60 s.
"""

from __future__ import annotations

import argparse
import configparser
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import free_port
from tests.e2e.http_load import start_load, summarize
from tests.ecs_support import (
    EcsClients,
    MotoEcs,
    Stack,
    appspec,
    embedded_stack,
    group_members,
    listener_port,
    moto_settings,
    revision,
    weights,
)

from shipyard.config import ServerConfig
from shipyard.containers.ecs.images import HTTPD_IMAGE, busybox_httpd
from shipyard.server.main import EmbeddedServer, start_embedded

CONFIGS = {"CodeDeployDefault.ECSAllAtOnce": 0, "CodeDeployDefault.ECSCanary10Percent5Minutes": 5}
POLL = 0.002
EMBEDDED_POLL = 0.02
RUN_LIMIT = 60.0


def one_run(
    server: EmbeddedServer,
    cd: Any,
    aws: EcsClients,
    stack: Stack,
    group: str,
    definition: str,
    poll: float = POLL,
) -> tuple[float, list[float]]:
    """(seconds from CreateDeployment to Succeeded, shift latencies in seconds)."""
    started = time.monotonic()
    deployment_id = cd.create_deployment(
        applicationName="bench", deploymentGroupName=group, revision=revision(appspec(definition))
    )["deploymentId"]
    runner = server.services.runner
    decided: dict[int, float] = {}
    seen: dict[int, float] = {}
    replacement_group = ""
    deadline = started + RUN_LIMIT
    while time.monotonic() < deadline:
        # The state as the runner last wrote it: no query of its own, so the poll does
        # not compete with the server for the database.
        cached = runner.cached(deployment_id)
        now = time.monotonic()
        weight = cached[1].state.shift_weight if cached else 0
        if weight and weight not in decided:
            decided[weight] = now
        if not replacement_group:
            for task_set in aws.task_sets(stack):
                if task_set["externalId"] == deployment_id:
                    replacement_group = task_set["loadBalancers"][0]["targetGroupArn"]
        if replacement_group:
            share = weights(aws.elbv2, stack.prod_listener).get(replacement_group, 0)
            if share and share not in seen:
                seen[share] = time.monotonic()
        if cached is None:  # a finished deployment leaves the runner's cache
            info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                assert info["status"] == "Succeeded", info.get("errorInformation")
                break
        time.sleep(poll)
    took = time.monotonic() - started
    latencies = [seen[w] - decided[w] for w in decided if w in seen and seen[w] >= decided[w]]
    return took, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minute", type=float, default=0.5)
    parser.add_argument("--backend", choices=("moto", "embedded", "both"), default="both")
    args = parser.parse_args()
    if args.backend in ("moto", "both"):
        on_moto(args.runs, args.minute)
    if args.backend in ("embedded", "both"):
        on_embedded(args.runs, args.minute)


def report(name: str, minutes: int, minute: float, totals: list[float], lags: list[float]) -> None:
    print(
        f"{name}: overhead median {statistics.median(totals) * 1000:.0f} ms, "
        f"max {max(totals) * 1000:.0f} ms over {len(totals)} deployments "
        f"(configured waits {minutes * minute:g} s)"
    )
    if lags:
        print(
            f"  shift latency (decided to listener): median "
            f"{statistics.median(lags) * 1000:.1f} ms, max {max(lags) * 1000:.1f} ms "
            f"over {len(lags)} steps"
        )


def client(server: EmbeddedServer, service: str = "codedeploy") -> Any:
    keys = configparser.ConfigParser()
    keys.read(server.credentials_path)
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=keys["default"]["aws_access_key_id"],
        aws_secret_access_key=keys["default"]["aws_secret_access_key"],
    )


def on_moto(runs: int, minute: float) -> None:
    print("== moto (containers_backend aws)")
    os.environ.update(AWS_ACCESS_KEY_ID="moto", AWS_SECRET_ACCESS_KEY="moto")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            data_dir=Path(tmp) / "server",
            port=free_port(),
            minute_seconds=minute,
            **moto_settings(url),
        )
        server = start_embedded(config)
        try:
            cd = client(server)
            cd.create_application(applicationName="bench", computePlatform="ECS")
            aws = MotoEcs(url)
            for index, (name, minutes) in enumerate(CONFIGS.items()):
                stack = aws.stack(f"bench{index}")
                cd.create_deployment_group(
                    applicationName="bench",
                    deploymentGroupName=stack.cluster,
                    deploymentConfigName=name,
                    **group_members(stack),
                )
                totals: list[float] = []
                latencies: list[float] = []
                for run in range(runs):
                    definition = stack.task_definitions[(run + 1) % 2]
                    took, lags = one_run(server, cd, aws, stack, stack.cluster, definition)
                    totals.append(took - minutes * minute)
                    latencies += lags
                report(name, minutes, minute, totals, latencies)
        finally:
            server.stop()
            moto.stop()


def on_embedded(runs: int, minute: float) -> None:
    """The embedded service, under load on the production listener: requests lost too."""
    print("== embedded (Podman tasks, HAProxy load balancer, retries off)")

    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            data_dir=Path(tmp) / "server",
            port=free_port(),
            minute_seconds=minute,
            ecs_reconcile_seconds=0.2,
            containers_poll_seconds=0.2,
            elb_keep_running=False,  # its HAProxy processes end with the server
        )
        server = start_embedded(config)
        try:
            assert server.services.ecs is not None
            busybox_httpd(server.services.ecs.capacity.client(0))
            cd = client(server)
            cd.create_application(applicationName="bench", computePlatform="ECS")
            clients = EcsClients(client(server, "ecs"), client(server, "elbv2"))
            for index, (name, minutes) in enumerate(CONFIGS.items()):
                stack = embedded_stack(clients.ecs, clients.elbv2, f"bench{index}", HTTPD_IMAGE)
                cd.create_deployment_group(
                    applicationName="bench",
                    deploymentGroupName=stack.cluster,
                    deploymentConfigName=name,
                    **group_members(stack),
                )
                clients.wait_healthy(stack, 3)
                url = f"http://127.0.0.1:{listener_port(clients.elbv2, stack.prod_listener)}/"
                load = start_load(url, Path(tmp) / f"{index}.load", connections=8, rate=200)
                totals: list[float] = []
                latencies: list[float] = []
                try:
                    for run in range(runs):
                        definition = stack.task_definitions[(run + 1) % 2]
                        # Polled less often: the embedded ECS shares the SQLite file.
                        took, lags = one_run(
                            server, cd, clients, stack, stack.cluster, definition, EMBEDDED_POLL
                        )
                        totals.append(took - minutes * minute)
                        latencies += lags
                finally:
                    requests = load.stop()
                report(name, minutes, minute, totals, latencies)
                summary = summarize(requests)
                print(f"  requests lost: {summary.failures} of {summary.sent}")
        finally:
            server.stop()
            if server.services.ecs is not None and server.services.ecs.capacity.podman:
                server.services.ecs.capacity.podman.teardown()


if __name__ == "__main__":
    main()
