"""kill -9 of the Shipyard server in the middle of an ECS traffic shift (on moto's ECS
and ELBv2): on restart the deployment resumes from the weight it had recorded, so the
production listener's share of the replacement never goes back down, every step of
the schedule still comes, and the deployment ends with the replacement primary.

The server is a real ``python -m shipyard server`` process (tests/e2e/test_server_crash.py's
``ServerProcess``) with containers_backend "aws" on moto's server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_server_crash import ServerProcess
from tests.ecs_support import MotoEcs, appspec, group_members, revision, weights
from tests.moto_support import moto_endpoint
from tests.support import wait_until

MINUTE = 1.5
# 20 % every scaled minute: 20, 40, 60, 80, 100 over 6 s.
LINEAR = {
    "type": "TimeBasedLinear",
    "timeBasedLinear": {"linearPercentage": 20, "linearInterval": 1},
}


@pytest.fixture
def moto_url() -> Iterator[str]:
    yield from moto_endpoint()


@pytest.fixture
def server(tmp_path: Path, moto_url: str) -> Iterator[ServerProcess]:
    settings = {
        "SHIPYARD_MINUTE_SECONDS": str(MINUTE),
        "SHIPYARD_CONTAINERS_BACKEND": "aws",
        "SHIPYARD_CONTAINERS_ENDPOINT": moto_url,
        "SHIPYARD_CONTAINERS_REGION": "us-east-1",
        "SHIPYARD_CONTAINERS_POLL_SECONDS": "0.1",
    }
    process = ServerProcess(tmp_path / "server", "", env=settings)
    process.start()
    try:
        yield process
    finally:
        process.stop()


class WeightWatch:
    """Every share of production traffic the replacement's target group had, in order."""

    def __init__(self, elbv2: Any, listener: str, group: str) -> None:
        self.seen: list[int] = []
        self._stop = threading.Event()

        def watch() -> None:
            while not self._stop.is_set():
                weight = weights(elbv2, listener).get(group, 0)
                if not self.seen or self.seen[-1] != weight:
                    self.seen.append(weight)
                time.sleep(0.02)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(5)
        return self.seen


def test_a_kill_mid_shift_resumes_from_the_recorded_weight(
    server: ServerProcess, moto_url: str
) -> None:
    aws = MotoEcs(moto_url)
    stack = aws.stack("crash")
    cd = server.client()
    cd.create_application(applicationName="shop", computePlatform="ECS")
    cd.create_deployment_config(
        deploymentConfigName="linear-20",
        computePlatform="ECS",
        trafficRoutingConfig=LINEAR,
    )
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        deploymentConfigName="linear-20",
        **group_members(stack),
    )
    green = stack.target_group_arns[1]
    watch = WeightWatch(aws.elbv2, stack.prod_listener, green)
    deployment_id = cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision=revision(appspec(stack.task_definitions[1])),
    )["deploymentId"]
    wait_until(lambda: watch.seen[-1] == 40, "the shift to reach 40 %")

    server.kill()
    held = weights(aws.elbv2, stack.prod_listener)[green]
    server.start()
    cd = server.client()

    def status() -> str:
        return str(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])

    wait_until(lambda: status() == "Succeeded", "the deployment to finish after the restart")
    seen = watch.stop()
    assert held == 40
    assert seen == sorted(seen), f"the share went back down: {seen}"
    assert seen[seen.index(40) :] == [40, 60, 80, 100], seen
    (left,) = aws.task_sets(stack)
    assert (left["externalId"], left["status"]) == (deployment_id, "PRIMARY")
