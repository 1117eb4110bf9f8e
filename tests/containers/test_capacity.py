"""Capacity that cannot be had: a Podman that does not start, an endpoint nobody answers,
endpoint addresses that do not parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import ConfigError, ServerConfig
from shipyard.containers.ecs.capacity import parse_endpoint
from shipyard.containers.ecs.podman_service import CapacityError, PodmanService
from shipyard.containers.ecs.setup import build_capacity
from tests.conftest import start_live_server
from tests.containers.conftest import NO_ELB
from tests.containers.test_ecs_api import WEB
from tests.support import wait_until


def test_a_podman_that_exits_at_once_is_a_clear_error(tmp_path: Path) -> None:
    service = PodmanService(tmp_path / "ecs", podman="false")
    with pytest.raises(CapacityError, match="did not start"):
        service.ensure_started()
    service.stop()  # nothing left to stop, and no lock held
    with pytest.raises(CapacityError, match="not found"):
        PodmanService(tmp_path / "ecs", podman="no-such-podman").ensure_started()


def test_endpoint_addresses() -> None:
    assert parse_endpoint("unix:/run/docker.sock").base_url == "unix:///run/docker.sock"
    remote = parse_endpoint("tcp:10.0.0.5:2375")
    assert (remote.base_url, remote.target_address, remote.local) == (
        "tcp://10.0.0.5:2375",
        "10.0.0.5",
        False,
    )
    with pytest.raises(ValueError, match="expected"):
        parse_endpoint("http://x")
    with pytest.raises(ConfigError):
        build_capacity(ServerConfig(data_dir=Path("/nonexistent"), ecs_endpoints="tcp:nohost"))


def test_an_unreachable_engine_shows_in_the_service_events(tmp_path: Path) -> None:
    socket_path = tmp_path / "nobody.sock"
    running = start_live_server(
        tmp_path / "server",
        ecs_endpoints=f"unix:{socket_path}",
        ecs_reconcile_seconds=0.2,
        **NO_ELB,
    )
    server = next(running)
    try:
        ecs = server.client("ecs")
        ecs.create_cluster(clusterName="prod")
        ecs.register_task_definition(family="web", containerDefinitions=[WEB])
        ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=1)

        def said() -> list[str]:
            service = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
            return [e["message"] for e in service["events"] if "cannot reach" in e["message"]]

        (message,) = wait_until(said, "an event about the engine")
        assert message.startswith("(service web) cannot reach the container engine: unix://")
        assert ecs.list_tasks(cluster="prod")["taskArns"] == []  # nothing started blindly
    finally:
        next(running, None)
