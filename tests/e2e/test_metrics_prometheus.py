"""A real Prometheus scrapes the server's /metrics (with the bearer token) while a
deployment runs to a real agent; the deployment's counters are then in Prometheus."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Fleet, fleet_on_server, make_uploader
from tests.e2e.prometheus_process import running_prometheus
from tests.e2e.test_in_place import app_bundle, deploy, setup_group
from tests.support import wait_until

TOKEN = "scrape-token-for-the-test"
SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: shipyard
    authorization:
      credentials: {token}
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture
def metrics_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, metrics_token=TOKEN)


def query(url: str, expr: str) -> list[dict[str, Any]]:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
    return result


def value(url: str, expr: str) -> float | None:
    try:
        result = query(url, expr)
    except OSError:  # Prometheus still starting
        return None
    return float(result[0]["value"][1]) if result else None


def test_prometheus_records_a_deployment(metrics_fleet: Fleet, tmp_path: Path) -> None:
    fleet = metrics_fleet
    setup_group(fleet, ["web-1"])
    revision = make_uploader(fleet.server)("shop/v1.zip", app_bundle("v1"))
    target = fleet.server.url.removeprefix("http://")
    base = tmp_path / "prometheus"
    base.mkdir()
    with running_prometheus(base, SCRAPE_CONFIG.format(token=TOKEN, target=target)) as (url, log):
        wait_until(
            lambda: value(url, 'up{job="shipyard"}') == 1.0,
            lambda: f"Prometheus to scrape Shipyard:\n{log.read_text()}",
            30,
        )
        assert deploy(fleet, revision)["status"] == "Succeeded"
        finished = (
            'shipyard_deployments_finished_total{platform="Server",'
            'status="Succeeded",application="shop"}'
        )
        wait_until(lambda: value(url, finished) == 1.0, "the finished deployment in Prometheus", 30)
        assert value(url, 'shipyard_deployments_started_total{application="shop"}') == 1.0
        events = 'shipyard_lifecycle_event_duration_seconds_count{event="ValidateService"}'
        assert value(url, events) == 1.0
        assert value(url, 'shipyard_deployment_duration_seconds_count{status="Succeeded"}') == 1.0
        created = 'shipyard_api_requests_total{operation="CreateDeployment",result="ok"}'
        assert value(url, created) == 1.0
        assert value(url, 'shipyard_agents{state="polling"}') == 1.0
        assert value(url, "shipyard_open_long_polls") == 1.0
        assert value(url, 'shipyard_agent_last_seen_seconds{host="web-1"}') is not None
