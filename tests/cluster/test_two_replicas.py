"""Two replicas (servers in this process) on one PostgreSQL database: a deployment is
swept by one of them and its alarm read by one of them, and when a replica stops the
other takes its work over at once (it gave its leases up on the way out)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shipyard.secretbox import encode_key, new_key
from shipyard.server.alarm_watch import AlarmWatcher
from tests.conftest import LiveServer, start_live_server
from tests.support import call_extension, wait_until

KEY_VARIABLE = "SHIPYARD_TEST_CLUSTER_KEY"
Replica = tuple[LiveServer, Iterator[LiveServer]]


@pytest.fixture
def replicas(tmp_path: Path, pg_url: str) -> Iterator[list[Replica]]:
    os.environ[KEY_VARIABLE] = encode_key(new_key())  # the same secret key on both
    settings = {"secret_keys": f"env:{KEY_VARIABLE}", "alarm_poll_seconds": 0.1}
    running: list[Replica] = []
    try:
        for name in ("a", "b"):
            started = start_live_server(tmp_path / name, pg_url, **settings)
            running.append((next(started), started))
        yield running
    finally:
        for _, started in reversed(running):
            started.close()  # stops the server (start_live_server's finally)
        os.environ.pop(KEY_VARIABLE, None)


def holds(server: LiveServer, kind: str, key: str) -> bool:
    """Whether ``server`` held the lease of ``kind:key`` at its last round."""
    return f"{kind}:{key}" in server.services.runner.share._held.get(kind, set())


def readings(server: LiveServer) -> set[str]:
    (watcher,) = [w for w in server.services.workers if isinstance(w, AlarmWatcher)]
    return set(watcher.last_readings)


@pytest.fixture
def health_url() -> Iterator[str]:
    """An HTTP check that always passes (the alarm reads OK)."""

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def start_watched_deployment(server: LiveServer, health_url: str) -> str:
    """A deployment watching alarm ``health`` (OK), to a host whose agent never polls
    (it stays in progress for the agent timeout)."""
    cd = server.client("codedeploy")
    arn = "arn:aws:iam::000000000000:user/shipyard/web-1"
    cd.register_on_premises_instance(instanceName="web-1", iamUserArn=arn)
    cd.add_tags_to_on_premises_instances(
        instanceNames=["web-1"], tags=[{"Key": "role", "Value": "web"}]
    )
    check = {"url": health_url, "timeoutSeconds": 2}
    call_extension(server, "ShipyardPutAlarm", {"alarmName": "health", "http": check})
    cd.create_application(applicationName="shop")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        alarmConfiguration={"enabled": True, "alarms": [{"name": "health"}]},
    )
    s3 = server.client("s3")
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="v1.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    location = {"bucket": "bundles", "key": "v1.zip", "bundleType": "zip"}
    deployment_id: str = cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision={"revisionType": "S3", "s3Location": location},
    )["deploymentId"]
    return deployment_id


def test_one_replica_sweeps_and_watches_and_the_other_takes_over_when_it_stops(
    replicas: list[Replica], health_url: str
) -> None:
    (a, _), (b, _) = replicas
    deployment_id = start_watched_deployment(a, health_url)

    def sole(kind: str, key: str) -> LiveServer | None:
        holding = [s for s in (a, b) if holds(s, kind, key)]
        return holding[0] if len(holding) == 1 else None

    sweeper = wait_until(lambda: sole("deployment", deployment_id), "one replica sweeping")
    watcher = wait_until(lambda: sole("alarm", "health"), "one replica watching the alarm")
    wait_until(lambda: "health" in readings(watcher), "the watcher's reading")
    other = b if watcher is a else a
    assert readings(other) == set()  # the other replica does not read it
    assert sole("deployment", deployment_id) is sweeper  # still one, still the same

    # The replica holding the deployment stops: the other takes everything at once
    # (well inside the lease time: the stopping replica gave its leases up).
    index = 0 if sweeper is a else 1
    survivor = replicas[1 - index][0]
    replicas[index][1].close()
    wait_until(lambda: holds(survivor, "deployment", deployment_id), "the deployment taken over")
    wait_until(lambda: holds(survivor, "alarm", "health"), "the alarm taken over")
    wait_until(lambda: "health" in readings(survivor), "the survivor's reading")
    status = survivor.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert status["deploymentInfo"]["status"] == "InProgress"
