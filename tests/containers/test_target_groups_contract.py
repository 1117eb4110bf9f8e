"""The contract every ``containers.targets.TargetGroups`` keeps, run on each
implementation. ``FACTORIES`` names them: the embedded ELBv2's and the ECS side's memory
implementation (a factory takes the pytest request and returns a ``Seam``: the
implementation, a target group ARN it knows, and a way to make targets serve)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from shipyard.containers.elbv2.seam import EmbeddedTargetGroups
from shipyard.containers.targets import Target, TargetGroups, TargetState
from shipyard.containers.targets_memory import MemoryTargetGroups
from tests.conftest import free_port
from tests.elbv2.scenario import forward, target_group
from tests.elbv2.web_targets import web_targets
from tests.support import wait_until


@dataclass
class Seam:
    groups: TargetGroups
    group_arn: str
    # Targets that answer health checks (an implementation without checks ignores it).
    serving: Callable[[int], list[Target]]


def embedded(request: pytest.FixtureRequest, stack: ExitStack) -> Seam:
    """The ELBv2 side: its store and HAProxy, a listener forwarding to the group."""
    server = request.getfixturevalue("elb_server")
    elbv2 = server.client("elbv2")
    lb = elbv2.create_load_balancer(Name="seam")["LoadBalancers"][0]["LoadBalancerArn"]
    arn = target_group(elbv2, "seam")
    elbv2.create_listener(LoadBalancerArn=lb, Port=free_port(), DefaultActions=forward(arn))
    balancers = server.services.load_balancers
    assert balancers is not None

    def serving(count: int) -> list[Target]:
        names = [f"t{n}" for n in range(count)]
        started = stack.enter_context(web_targets(*names))
        return [Target("127.0.0.1", started[n].port) for n in names]

    return Seam(EmbeddedTargetGroups(balancers), arn, serving)


def memory(_request: pytest.FixtureRequest, stack: ExitStack) -> Seam:
    """The ECS side's in-process groups (servers without load balancers, ECS tests)."""
    groups = MemoryTargetGroups()
    arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/seam/0123456789abcdef"
    groups.create(arn)

    def serving(count: int) -> list[Target]:
        names = [f"t{n}" for n in range(count)]
        started = stack.enter_context(web_targets(*names))
        return [Target("127.0.0.1", started[n].port) for n in names]

    return Seam(groups, arn, serving)


FACTORIES: dict[str, Callable[[pytest.FixtureRequest, ExitStack], Seam]] = {
    "embedded-elbv2": embedded,
    "memory": memory,
}


@pytest.fixture(params=sorted(FACTORIES))
def seam(request: pytest.FixtureRequest) -> Iterator[Seam]:
    with ExitStack() as stack:
        yield FACTORIES[request.param](request, stack)


def states(seam: Seam) -> dict[Target, TargetState]:
    return dict(seam.groups.health(seam.group_arn))


def test_exists(seam: Seam) -> None:
    assert seam.groups.exists(seam.group_arn)
    assert not seam.groups.exists(seam.group_arn.rsplit("/", 1)[0] + "/0000000000000000")


def test_registered_targets_turn_healthy(seam: Seam) -> None:
    targets = seam.serving(2)
    seam.groups.register(seam.group_arn, targets)
    assert set(states(seam)) == set(targets)
    assert set(states(seam).values()) <= {TargetState.INITIAL, TargetState.HEALTHY}
    wait_until(
        lambda: set(states(seam).values()) == {TargetState.HEALTHY},
        lambda: f"healthy targets: {states(seam)}",
    )
    seam.groups.register(seam.group_arn, targets)  # again: no change
    assert set(states(seam)) == set(targets)


def test_deregistered_targets_drain_then_go(seam: Seam) -> None:
    first, second = seam.serving(2)
    seam.groups.register(seam.group_arn, [first, second])
    seam.groups.deregister(seam.group_arn, [first])
    assert states(seam).get(first) in (TargetState.DRAINING, None)
    wait_until(lambda: first not in states(seam), lambda: f"{first} gone: {states(seam)}")
    assert second in states(seam)
    seam.groups.deregister(seam.group_arn, [first])  # no longer registered: nothing to do


def test_an_unknown_group_is_refused(seam: Seam) -> None:
    unknown = seam.group_arn.rsplit("/", 1)[0] + "/0000000000000000"
    target: Any = Target("127.0.0.1", 1)
    with pytest.raises(Exception):  # noqa: B017 - the contract names no exception type
        seam.groups.register(unknown, [target])
    with pytest.raises(Exception):  # noqa: B017
        seam.groups.health(unknown)
