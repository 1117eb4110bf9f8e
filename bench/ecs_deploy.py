"""ECS deployments: what a deployment costs on top of the waits its config asks for, and
how fast a decided shift step reaches the production listener.

Run: .venv/bin/python bench/ecs_deploy.py [--runs 3] [--minute 0.5]

Starts a Shipyard server in this process (SQLite, ``minute_seconds`` = ``--minute``) with
``containers_backend: aws`` pointed at moto's server on loopback (the AWS path: a
second implementation of the ECS and ELBv2 APIs), builds a CODE_DEPLOY service of 3
tasks behind a load balancer there (tests/ecs_support.py), and deploys its second task
definition ``--runs`` times with each of:

- ``CodeDeployDefault.ECSAllAtOnce``: no configured wait, so the whole time from
  CreateDeployment to Succeeded is overhead (the eight events, CreateTaskSet, the
  steady-state poll, ModifyListener twice, UpdateServicePrimaryTaskSet, DeleteTaskSet,
  and the engine's steps between them);
- ``CodeDeployDefault.ECSCanary10Percent5Minutes``: 5 scaled minutes configured; the
  overhead is the total less that.

While a deployment runs, this process polls what the engine decided (the runner's state)
and DescribeListeners, each about every 2 ms, and reports the **shift latency**: from
the engine deciding a weight to the listener forwarding it.

Requests lost need a load balancer that serves requests: that is the embedded
service's e2e (tests/e2e), not moto's, so they are not measured here.

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
from tests.ecs_support import (
    MotoEcs,
    Stack,
    appspec,
    group_members,
    moto_settings,
    revision,
    weights,
)

from shipyard.config import ServerConfig
from shipyard.server.main import EmbeddedServer, start_embedded

CONFIGS = {"CodeDeployDefault.ECSAllAtOnce": 0, "CodeDeployDefault.ECSCanary10Percent5Minutes": 5}
POLL = 0.002
RUN_LIMIT = 60.0


def one_run(
    server: EmbeddedServer, cd: Any, aws: MotoEcs, stack: Stack, group: str, definition: str
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
        stored = runner.current(deployment_id)
        assert stored is not None
        now = time.monotonic()
        weight = stored.state.shift_weight
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
        if stored.state.status.value in ("Succeeded", "Failed", "Stopped"):
            assert stored.state.status.value == "Succeeded", stored.state.error_message
            break
        time.sleep(POLL)
    took = time.monotonic() - started
    latencies = [seen[w] - decided[w] for w in decided if w in seen and seen[w] >= decided[w]]
    return took, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minute", type=float, default=0.5)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="moto", AWS_SECRET_ACCESS_KEY="moto")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    url = f"http://{host}:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            data_dir=Path(tmp) / "server",
            port=free_port(),
            minute_seconds=args.minute,
            **moto_settings(url),
        )
        server = start_embedded(config)
        try:
            keys = configparser.ConfigParser()
            keys.read(server.credentials_path)
            cd = boto3.client(
                "codedeploy",
                endpoint_url=server.url,
                region_name="us-east-1",
                aws_access_key_id=keys["default"]["aws_access_key_id"],
                aws_secret_access_key=keys["default"]["aws_secret_access_key"],
            )
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
                for run in range(args.runs):
                    definition = stack.task_definitions[(run + 1) % 2]
                    took, lags = one_run(server, cd, aws, stack, stack.cluster, definition)
                    totals.append(took - minutes * args.minute)
                    latencies += lags
                print(
                    f"{name}: overhead median {statistics.median(totals) * 1000:.0f} ms, "
                    f"max {max(totals) * 1000:.0f} ms over {len(totals)} deployments "
                    f"(configured waits {minutes * args.minute:g} s)"
                )
                if latencies:
                    print(
                        f"  shift latency (decided to listener): median "
                        f"{statistics.median(latencies) * 1000:.1f} ms, "
                        f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} steps"
                    )
        finally:
            server.stop()
            moto.stop()


if __name__ == "__main__":
    main()
