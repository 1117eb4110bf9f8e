"""Alarms against a real Prometheus scraping a tiny test app, with real agents.

The test app serves ``/metrics`` with a gauge ``app_errors`` the tests set; Prometheus
(the Debian package's binary, started here) scrapes it every second. ``set_errors``
waits until Prometheus itself reports the new value, so no test races a scrape.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.alarms import AlarmDefinition, evaluate
from tests.conftest import free_port
from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    Uploader,
    fleet_on_server,
    make_bundle,
    make_uploader,
)
from tests.e2e.prometheus_process import START_SECONDS, running_prometheus
from tests.support import call_extension, wait_until

SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["127.0.0.1:{app_port}"]
"""


# --- the scraped test app and Prometheus ----------------------------------------------


class MetricsApp:
    """Serves ``app_errors <value>`` on /metrics."""

    def __init__(self) -> None:
        self.errors = 0.0
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = f"# TYPE app_errors gauge\napp_errors {app.errors:g}\n".encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Prometheus:
    url: str
    app: MetricsApp

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def errors_seen(self) -> float | None:
        result = self.query("app_errors")["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def set_errors(self, value: float) -> None:
        """Change the gauge and wait until Prometheus has scraped the new value."""
        self.app.errors = value
        wait_until(lambda: self.errors_seen() == value, f"Prometheus to see app_errors={value}", 15)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    base = tmp_path_factory.mktemp("prometheus")
    app = MetricsApp()
    try:
        with running_prometheus(base, SCRAPE_CONFIG.format(app_port=app.port)) as (url, log):
            server = Prometheus(url, app)
            wait_until(
                lambda: server.errors_seen() is not None,
                lambda: f"a scrape of the test app:\n{log.read_text()}",
                START_SECONDS,
            )
            yield server
    finally:
        app.close()


@pytest.fixture
def errors(prometheus: Prometheus) -> Prometheus:
    """Prometheus with ``app_errors`` at 0 (as Prometheus sees it) when the test starts."""
    prometheus.set_errors(0)
    return prometheus


# --- reading alarms from the real Prometheus ----------------------------------------------


def alarm(prometheus: Prometheus, query: str, threshold: float | None = None) -> AlarmDefinition:
    return AlarmDefinition(
        name="errors",
        kind="prometheus",
        prometheus_url=prometheus.url,
        query=query,
        threshold=threshold,
    )


def test_readings_from_a_real_prometheus(errors: Prometheus) -> None:
    assert evaluate(alarm(errors, "app_errors"), 5).state == "OK"
    assert evaluate(alarm(errors, "app_errors > 0"), 5).state == "OK"  # empty vector
    assert evaluate(alarm(errors, "vector(0) / 0"), 5).state == "OK"  # NaN never fires
    errors.set_errors(3)
    fired = evaluate(alarm(errors, "app_errors"), 5)
    assert fired.state == "ALARM"
    assert fired.message.startswith("app_errors is non-zero: app_errors{instance=")
    assert fired.message.endswith('job="app"} = 3')
    assert evaluate(alarm(errors, "app_errors", threshold=5), 5).state == "OK"
    assert evaluate(alarm(errors, "app_errors", threshold=2.5), 5).state == "ALARM"
    assert evaluate(alarm(errors, "scalar(app_errors)"), 5).state == "ALARM"
    assert evaluate(alarm(errors, "sum(app_errors) > 0"), 5).state == "ALARM"
    matrix = evaluate(alarm(errors, "app_errors[1m]"), 5)
    assert matrix.state == "UNKNOWN"
    assert "returns a matrix" in matrix.message
    broken = evaluate(alarm(errors, "app_errors{"), 5)
    assert broken.state == "UNKNOWN"
    assert broken.message.startswith(f"Prometheus at {errors.url} refused the query: bad_data:")


# --- deployments watched by the alarm ----------------------------------------------------


@pytest.fixture
def alarm_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, alarm_poll_seconds=0.25)


def bundle(version: str, validate: str = "#!/bin/sh\nexit 0\n") -> bytes:
    appspec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/www\n"
        "hooks:\n  ValidateService:\n    - location: scripts/validate.sh\n      timeout: 60\n"
    )
    return make_bundle(
        {
            "appspec.yml": appspec,
            "site/index.html": version,
            "scripts/validate.sh": validate,
        }
    )


def waiting_validate(release: Path) -> str:
    """A ValidateService that runs until the test creates ``release`` (at most 30 s)."""
    return (
        f"#!/bin/sh\nfor i in $(seq 1 300); do\n  [ -e {release} ] && exit 0\n"
        "  sleep 0.1\ndone\nexit 0\n"
    )


def put_alarm(fleet: Fleet, url: str, bake: float = 0) -> None:
    body = {"alarmName": "errors", "prometheus": {"url": url, "query": "app_errors"}}
    call_extension(fleet.server, "ShipyardPutAlarm", {**body, "bakeSeconds": bake})


def create_group(fleet: Fleet, alarms: dict[str, Any], **extra: Any) -> None:
    fleet.add_hosts(["web-1"], {"role": "web"})
    cd = fleet.cd
    cd.create_application(applicationName="shop", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        alarmConfiguration=alarms,
        **extra,
    )


def start(fleet: Fleet, revision: dict[str, Any]) -> str:
    deployment_id: str = fleet.cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )["deploymentId"]
    return deployment_id


def validate_running(fleet: Fleet, deployment_id: str) -> bool:
    target = fleet.targets(deployment_id).get("web-1")
    events = {
        e["lifecycleEventName"]: e["status"] for e in (target or {}).get("lifecycleEvents", [])
    }
    return events.get("ValidateService") == "InProgress"


ENABLED = {"enabled": True, "alarms": [{"name": "errors"}]}


def test_alarm_stops_the_deployment_and_rolls_back(
    alarm_fleet: Fleet, errors: Prometheus, tmp_path: Path
) -> None:
    fleet = alarm_fleet
    upload: Uploader = make_uploader(fleet.server)
    put_alarm(fleet, errors.url)
    create_group(
        fleet,
        ENABLED,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
    )
    good = fleet.wait(start(fleet, upload("v1.zip", bundle("v1"))))
    assert good["status"] == "Succeeded", good

    release = tmp_path / "release"
    second = start(fleet, upload("v2.zip", bundle("v2", waiting_validate(release))))
    fleet.wait(second, done=lambda _info: validate_running(fleet, second))
    errors.set_errors(1)
    # The alarm stops the deployment at once; the host finishes the event it is running.
    stopping = fleet.wait(second, done=lambda i: "errorInformation" in i)
    assert stopping["errorInformation"]["code"] == "ALARM_ACTIVE"
    errors.set_errors(0)  # the errors are gone before the rollback runs
    release.touch()
    info = fleet.wait(second)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert info["errorInformation"]["message"].startswith("Alarm errors is active: app_errors")
    # v2 had been installed (the rollback, which starts at once, puts v1 back).
    installed = fleet.targets(second)["web-1"]["lifecycleEvents"]
    assert {e["lifecycleEventName"]: e["status"] for e in installed}["Install"] == "Succeeded"

    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = fleet.wait(rollback_id)
    assert rollback["status"] == "Succeeded", rollback
    assert (fleet.host("web-1").view(SHARED_ROOT / "www/index.html")).read_text() == "v1"


def test_alarm_during_bake_time_stops_the_deployment(
    alarm_fleet: Fleet, errors: Prometheus
) -> None:
    fleet = alarm_fleet
    put_alarm(fleet, errors.url, bake=30)
    create_group(fleet, ENABLED)
    deployment_id = start(fleet, make_uploader(fleet.server)("v1.zip", bundle("v1")))
    baking = fleet.wait(deployment_id, done=lambda i: i["status"] != "InProgress")
    assert baking["status"] == "Baking", baking
    assert baking["deploymentOverview"]["Succeeded"] == 1
    errors.set_errors(1)
    info = fleet.wait(deployment_id)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"


def test_quiet_bake_time_ends_in_success(alarm_fleet: Fleet, errors: Prometheus) -> None:
    fleet = alarm_fleet
    put_alarm(fleet, errors.url, bake=2)
    create_group(fleet, ENABLED)
    deployment_id = start(fleet, make_uploader(fleet.server)("v1.zip", bundle("v1")))
    baking = fleet.wait(deployment_id, done=lambda i: i["status"] != "InProgress")
    assert baking["status"] == "Baking", baking
    info = fleet.wait(deployment_id)
    assert info["status"] == "Succeeded"
    validate = next(
        e
        for e in fleet.targets(deployment_id)["web-1"]["lifecycleEvents"]
        if e["lifecycleEventName"] == "ValidateService"
    )
    baked = info["completeTime"] - validate["endTime"]
    assert 2 <= baked.total_seconds() < 10


def test_unreadable_alarm_stops_unless_poll_failures_are_ignored(
    alarm_fleet: Fleet, tmp_path: Path
) -> None:
    fleet = alarm_fleet
    upload = make_uploader(fleet.server)
    put_alarm(fleet, f"http://127.0.0.1:{free_port()}")  # no Prometheus there
    create_group(fleet, {**ENABLED, "ignorePollAlarmFailure": True})
    # ValidateService takes long enough for several watcher rounds (every 0.25 s).
    slow = bundle("v1", "#!/bin/sh\nsleep 1.5\n")
    info = fleet.wait(start(fleet, upload("v1.zip", slow)))
    assert info["status"] == "Succeeded", info

    fleet.cd.update_deployment_group(
        applicationName="shop",
        currentDeploymentGroupName="web",
        alarmConfiguration={**ENABLED, "ignorePollAlarmFailure": False},
    )
    release = tmp_path / "release"
    second = start(fleet, upload("v2.zip", bundle("v2", waiting_validate(release))))
    fleet.wait(second, done=lambda i: "errorInformation" in i)
    release.touch()
    info = fleet.wait(second)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "ALARM_ACTIVE"
    assert info["errorInformation"]["message"].startswith(
        "Alarm errors is active: its state cannot be read: cannot reach Prometheus at "
    )
