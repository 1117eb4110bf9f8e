"""The memory target groups: real TCP probes, draining on a clock, unknown groups."""

from __future__ import annotations

import socket

import pytest

from shipyard.containers.targets import Target, TargetState
from shipyard.containers.targets_memory import MemoryTargetGroups

GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/g/1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_targets_turn_healthy_when_something_listens() -> None:
    groups = MemoryTargetGroups()
    groups.create(GROUP)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        live = Target("127.0.0.1", listener.getsockname()[1])
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            dead = Target("127.0.0.1", closed.getsockname()[1])
        groups.register(GROUP, [live, dead])
        assert groups.health(GROUP) == {live: TargetState.HEALTHY, dead: TargetState.INITIAL}
    assert groups.health(GROUP) == {live: TargetState.UNHEALTHY, dead: TargetState.INITIAL}


def test_deregistered_targets_drain_then_go() -> None:
    clock = Clock()
    groups = MemoryTargetGroups(probe=None, drain_seconds=5.0, clock=clock)
    groups.create(GROUP)
    target = Target("127.0.0.1", 8080)
    groups.register(GROUP, [target])
    assert groups.health(GROUP) == {target: TargetState.HEALTHY}  # probe=None: at once
    groups.deregister(GROUP, [target])
    assert groups.health(GROUP) == {target: TargetState.DRAINING}
    clock.now += 5.0
    assert groups.health(GROUP) == {}
    groups.register(GROUP, [target])
    assert groups.health(GROUP) == {target: TargetState.HEALTHY}


def test_unknown_groups() -> None:
    groups = MemoryTargetGroups()
    assert not groups.exists(GROUP)
    with pytest.raises(KeyError):
        groups.register(GROUP, [Target("127.0.0.1", 1)])
    groups.create(GROUP)
    assert groups.exists(GROUP)
    groups.delete(GROUP)
    assert not groups.exists(GROUP)
