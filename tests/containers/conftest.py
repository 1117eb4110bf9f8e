"""Fixtures for the embedded ECS: a live server whose tasks run on a real Podman API
service (started by the server itself), memory target groups (a server without load
balancers), the busybox httpd image; and the embedded ELBv2's server fixture, for the
seam's contract tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.containers.ecs.images import BUSYBOX, HTTPD_IMAGE, busybox_httpd
from shipyard.containers.targets_memory import MemoryTargetGroups
from tests.conftest import LiveServer, service_missing, start_live_server
from tests.elbv2.conftest import elb_server

__all__ = ["elb_server"]
# The ECS tests' servers have no load balancers, so their target groups are in memory.
NO_ELB = {"elb_haproxy": "off"}

TG_BLUE = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/0123456789abcdef"
TG_GREEN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/fedcba9876543210"


def require_podman() -> None:
    if shutil.which("podman") is None:
        service_missing("podman (Debian packages podman and runc)")
    if not BUSYBOX.is_file():
        service_missing(f"{BUSYBOX} (Debian package busybox-static)")


@pytest.fixture
def ecs_server(tmp_path: Path, database: str) -> Iterator[LiveServer]:
    """A server on a fast reconciler, with two target groups, and the httpd image built
    in its Podman store."""
    require_podman()
    running = start_live_server(tmp_path / "server", database, ecs_reconcile_seconds=0.2, **NO_ELB)
    server = next(running)
    try:
        prepare(server)
        yield server
    finally:
        next(running, None)  # the server stops first: nothing starts replacements
        teardown(server)


def prepare(server: LiveServer) -> None:
    """The two target groups, and the httpd image in the server's own Podman store."""
    groups = server.services.target_groups
    assert isinstance(groups, MemoryTargetGroups)
    groups.create(TG_BLUE)
    groups.create(TG_GREEN)
    assert server.services.ecs is not None
    busybox_httpd(server.services.ecs.capacity.client(0))


def teardown(server: LiveServer) -> None:
    """Remove every container of a stopped server's Podman store, and its run state."""
    assert server.services.ecs is not None
    podman = server.services.ecs.capacity.podman
    assert podman is not None
    podman.teardown()


@pytest.fixture
def ecs(ecs_server: LiveServer) -> Any:
    return ecs_server.client("ecs")


def httpd_definition(ecs: Any, family: str = "web", version: str = "1", **container: Any) -> str:
    """Register the busybox httpd task definition; its ARN."""
    definition = {
        "name": "web",
        "image": HTTPD_IMAGE,
        "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
        "environment": [{"name": "VERSION", "value": version}],
        "essential": True,
        "memory": 64,
        **container,
    }
    answer = ecs.register_task_definition(family=family, containerDefinitions=[definition])
    return str(answer["taskDefinition"]["taskDefinitionArn"])
