"""What a group's past deployments say about its hosts: which ran a revision
(the outdated-hosts look) and how each host stands for scheduling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import ServerConfig
from shipyard.engine.hosts import new_target
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.engine.state import DeploymentState
from shipyard.model import DeploymentStatus, TargetStatus
from shipyard.server.context import Services
from shipyard.server.main import build_services
from shipyard.store import deployments as store

A = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "a.zip", "bundleType": "zip"}}
B = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "b.zip", "bundleType": "zip"}}


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    built = build_services(ServerConfig(data_dir=tmp_path / "server", database=db_url))
    yield built
    built.db.close()


def _insert(
    services: Services, deployment_id: str, at: float, revision: dict[str, Any], **hosts: str
) -> None:
    targets = {name: new_target(name, IN_PLACE) for name in hosts}
    for name, status in hosts.items():
        targets[name].status = TargetStatus(status)
    state = DeploymentState(
        deployment_id=deployment_id,
        status=DeploymentStatus.SUCCEEDED,
        health_rule={"type": "HOST_COUNT", "value": 0},
        event_timeout=60.0,
        create_time=at,
        targets=targets,
    )
    with services.db.tx() as conn:
        store.insert(conn, state, {"revision": revision}, "shop", "web")


def test_each_deployment_counts_once_for_its_hosts(services: Services) -> None:
    _insert(services, "d-1", 1.0, A, web_1="Succeeded", web_2="Failed")
    _insert(services, "d-2", 2.0, B, web_1="Succeeded")
    _insert(services, "d-3", 3.0, A, web_3="Succeeded")
    _insert(services, "d-4", 4.0, B, web_4="InProgress")  # not finished: not counted
    with services.db.tx() as conn:
        assert store.targets_of_revision(conn, "shop", "web", A) == {"web_1", "web_2", "web_3"}
        assert store.targets_of_revision(conn, "shop", "web", B) == {"web_1", "web_4"}
        assert store.targets_of_revision(conn, "shop", "other", A) == set()
        hosts = ["web_1", "web_2", "web_3", "web_4", "web_5"]
        assert store.instance_health(conn, "shop", "web", hosts, A) == {
            "web_1": "old",  # its latest finished deployment was of B
            "web_2": "unhealthy",
            "web_3": "current",
            "web_4": "unknown",
            "web_5": "unknown",
        }
