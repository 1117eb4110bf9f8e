"""Trigger notifications: CodeDeploy-shaped payloads, queueing inside the engine's
transaction, and delivery to real webhooks on 127.0.0.1 (signing, retries with
backoff, dead and slow receivers, bounded concurrency, pick-up after a restart)."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard import notify
from shipyard.config import ServerConfig
from shipyard.engine import machine, messages
from shipyard.engine.hosts import new_target
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.engine.state import DeploymentState
from shipyard.model import DeploymentStatus
from shipyard.notify.delivery import Deliverer
from shipyard.server.context import Services
from shipyard.server.main import build_services
from shipyard.store import deliveries
from shipyard.store import deployments as deployment_store
from shipyard.store.deployments import StoredDeployment
from shipyard.store.groups import insert_deployment_group
from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN
from tests.support import raw_call, wait_until

ALL_EVENTS = [
    "DeploymentStart",
    "DeploymentSuccess",
    "DeploymentFailure",
    "DeploymentStop",
    "DeploymentRollback",
    "DeploymentReady",
    "InstanceStart",
    "InstanceSuccess",
    "InstanceFailure",
    "InstanceReady",
]
GROUP_ID = "11111111-2222-3333-4444-555555555555"


# ---- a real webhook receiver -----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result

    @property
    def event(self) -> str:
        return self.headers["X-Shipyard-Event"]


class Receiver:
    """A webhook on 127.0.0.1 that answers 500 to its first ``fail_first`` requests and
    200 afterwards, holding each request ``delay`` seconds first (released at close)."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.requests: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(Received(dict(self.headers), body, time.monotonic()))
                    count = len(receiver.requests)
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                if receiver.delay:
                    receiver._release.wait(receiver.delay)
                with receiver._lock:
                    receiver.in_flight -= 1
                self.send_response(500 if count <= receiver.fail_first else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        wait_until(
            lambda: len(self.requests) >= count,
            lambda: f"{count} requests: only {len(self.requests)} arrived",
            timeout,
        )
        return list(self.requests)

    def release(self) -> None:
        """Answer the requests being held, and hold no more."""
        self._release.set()

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def verify(request: Received, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["X-Shipyard-Signature"])


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# ---- deployments to describe ------------------------------------------------------------


def new_stored(hosts: int = 2, rule: dict[str, Any] | None = None) -> StoredDeployment:
    names = [f"web-{i}" for i in range(1, hosts + 1)]
    state = DeploymentState(
        deployment_id="d-NOTIFY001",
        status=DeploymentStatus.CREATED,
        health_rule=rule or {"type": "HOST_COUNT", "value": 0},
        event_timeout=60.0,
        create_time=calendar.timegm((2018, 12, 13, 20, 23, 6)),
        targets={n: new_target(n, IN_PLACE) for n in names},
    )
    info = {"deploymentGroupId": GROUP_ID, "targetOrder": names}
    return StoredDeployment(state, info, "shop", "web")


def run_host(state: DeploymentState, host: str, start: float, fail_at: str = "") -> float:
    now = start
    for event in IN_PLACE:
        machine.step(state, messages.Acknowledged(host, event), now)
        now += 0.25
        ok = event != fail_at
        machine.step(state, messages.Completed(host, event, ok), now)
        now += 0.25
        if not ok:
            break
    return now


def group_doc(triggers: list[Any]) -> dict[str, Any]:
    return {
        "applicationName": "shop",
        "deploymentGroupName": "web",
        "deploymentGroupId": GROUP_ID,
        "triggerConfigurations": triggers,
    }


# ---- payloads ----------------------------------------------------------------------------


def test_times_are_spelled_as_codedeploy_spells_them() -> None:
    assert notify.codedeploy_time(calendar.timegm((2018, 12, 13, 20, 23, 6))) == (
        "Thu Dec 13 20:23:06 UTC 2018"
    )
    assert notify.codedeploy_time(calendar.timegm((2026, 1, 5, 3, 4, 5))) == (
        "Mon Jan 05 03:04:05 UTC 2026"
    )
    assert notify.codedeploy_time(None) is None
    assert notify.epoch_string(1446744207.5641) == "1446744207.564"


def test_deployment_payloads_carry_codedeploys_fields() -> None:
    stored = new_stored()
    state = stored.state
    machine.step(state, messages.Start(), state.create_time + 1)
    start = notify.build_payload(stored, "DeploymentStart", None, "all", "eu-west-1")
    assert start == {
        "region": "eu-west-1",
        "accountId": "000000000000",
        "eventTriggerName": "all",
        "applicationName": "shop",
        "deploymentId": "d-NOTIFY001",
        "deploymentGroupName": "web",
        "createTime": "Thu Dec 13 20:23:06 UTC 2018",
        "completeTime": None,
        "deploymentOverview": json.dumps(
            {"Failed": "0", "InProgress": "2", "Pending": "0", "Skipped": "0", "Succeeded": "0"},
            separators=(",", ":"),
        ),
        "status": "CREATED",
        "eventType": "DeploymentStart",
    }
    now = run_host(state, "web-1", state.create_time + 2)
    run_host(state, "web-2", now)
    assert state.status == DeploymentStatus.SUCCEEDED
    done = notify.build_payload(stored, "DeploymentSuccess", None, "all", "eu-west-1")
    assert done["status"] == "SUCCEEDED"
    assert done["completeTime"] == notify.codedeploy_time(state.complete_time)
    assert json.loads(done["deploymentOverview"])["Succeeded"] == "2"
    assert "errorInformation" not in done


def test_a_failed_deployment_reports_its_error_information() -> None:
    stored = new_stored(1)
    state = stored.state
    machine.step(state, messages.Start(), state.create_time)
    run_host(state, "web-1", state.create_time + 1, fail_at="AfterInstall")
    assert state.status == DeploymentStatus.FAILED
    payload = notify.build_payload(stored, "DeploymentFailure", None, "t", "us-east-1")
    assert payload["status"] == "FAILED"
    error = json.loads(payload["errorInformation"])
    assert error == {"ErrorCode": state.error_code, "ErrorMessage": state.error_message}
    instance = notify.build_payload(stored, "InstanceFailure", "web-1", "t", "us-east-1")
    assert instance["instanceStatus"] == "Failed"
    statuses = {e["LifecycleEvent"]: e["LifecycleEventStatus"] for e in instance["lifecycleEvents"]}
    assert statuses["AfterInstall"] == "Failed"
    assert statuses["ApplicationStart"] == "Skipped"


def test_instance_payloads_carry_lifecycle_events() -> None:
    stored = new_stored(1)
    state = stored.state
    machine.step(state, messages.Start(), 100.0)
    begun = notify.build_payload(stored, "InstanceStart", "web-1", "hosts", "us-east-1")
    assert begun["instanceStatus"] == "InProgress"
    assert begun["lifecycleEvents"][0] == {
        "LifecycleEvent": "ApplicationStop",
        "LifecycleEventStatus": "Pending",
        "StartTime": None,
        "EndTime": None,
    }
    run_host(state, "web-1", 1446744188.595)
    payload = notify.build_payload(stored, "InstanceSuccess", "web-1", "hosts", "us-east-1")
    assert set(payload) == {
        "region",
        "accountId",
        "eventTriggerName",
        "deploymentId",
        "instanceId",
        "lastUpdatedAt",
        "instanceStatus",
        "lifecycleEvents",
        "eventType",
    }
    assert payload["instanceId"] == "arn:aws:codedeploy:us-east-1:000000000000:instance/web-1"
    assert payload["instanceStatus"] == "Succeeded"
    assert payload["lastUpdatedAt"] == f"{state.targets['web-1'].last_updated:.3f}"
    first = payload["lifecycleEvents"][0]
    assert first == {
        "LifecycleEvent": "ApplicationStop",
        "LifecycleEventStatus": "Succeeded",
        "StartTime": "1446744188.595",
        "EndTime": "1446744188.845",
    }
    assert [e["LifecycleEvent"] for e in payload["lifecycleEvents"]] == list(IN_PLACE)


def test_events_it_cannot_describe_are_refused() -> None:
    stored = new_stored(1)
    with pytest.raises(ValueError, match="needs a target"):
        notify.build_payload(stored, "InstanceStart", "nobody", "t", "us-east-1")
    with pytest.raises(ValueError, match="unknown trigger event"):
        notify.build_payload(stored, "Bogus", None, "t", "us-east-1")


# ---- queueing --------------------------------------------------------------------------


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Iterator[Services]:
    built = build_services(ServerConfig(data_dir=tmp_path / "server", database=db_url))
    yield built
    built.db.close()


def store_deployment(services: Services, triggers: list[Any]) -> StoredDeployment:
    stored = new_stored()
    with services.db.tx() as conn:
        insert_deployment_group(conn, group_doc(triggers))
        deployment_store.insert(conn, stored.state, stored.info, "shop", "web")
    return stored


def test_notices_queue_matching_triggers_and_skips_malformed_ones(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    triggers = [
        {
            "triggerName": "starts",
            "triggerTargetArn": "https://hooks.example/a",
            "triggerEvents": ["DeploymentStart", "InstanceStart"],
        },
        {
            "triggerName": "ends",
            "triggerTargetArn": "http://hooks.example/b",
            "triggerEvents": ["DeploymentSuccess"],
        },
        {
            "triggerName": "sns",
            "triggerTargetArn": "arn:aws:sns:us-east-1:1:topic",
            "triggerEvents": ALL_EVENTS,
        },
        {"triggerTargetArn": "http://hooks.example/c", "triggerEvents": ALL_EVENTS},
        {
            "triggerName": "odd",
            "triggerTargetArn": "http://hooks.example/d",
            "triggerEvents": "all",
        },
        "not a trigger",
    ]
    stored = store_deployment(services, triggers)
    machine.step(stored.state, messages.Start(), 5.0)
    with caplog.at_level(logging.WARNING, "shipyard.notify"), services.db.tx() as conn:
        assert notify.Notices(conn, stored, 5.0, "us-east-1").add("DeploymentStart", None) == 1
        assert notify.Notices(conn, stored, 5.0, "us-east-1").add("InstanceStart", "web-1") == 1
        assert notify.Notices(conn, stored, 5.0, "us-east-1").add("InstanceFailure", "web-1") == 0
        # An event that cannot be described is logged, never raised into the transaction.
        assert notify.Notices(conn, stored, 5.0, "us-east-1").add("InstanceStart", "nobody") == 0
        assert notify.Notices(conn, stored, 6.0, "us-east-1").add("DeploymentSuccess", None) == 1
    assert "not an http(s) webhook URL" in caplog.text
    assert "without a name" in caplog.text
    assert "malformed trigger" in caplog.text
    assert "cannot describe InstanceStart" in caplog.text
    with services.db.tx() as conn:
        queued = deliveries.deliveries_of(conn, "d-NOTIFY001")
    assert [(d.trigger_name, d.event_type, d.url, d.status, d.attempts) for d in queued] == [
        ("starts", "DeploymentStart", "https://hooks.example/a", "Pending", 0),
        ("starts", "InstanceStart", "https://hooks.example/a", "Pending", 0),
        ("ends", "DeploymentSuccess", "http://hooks.example/b", "Pending", 0),
    ]
    assert queued[0].payload["eventTriggerName"] == "starts"
    assert queued[0].payload["status"] == "CREATED"
    assert queued[1].payload["instanceId"].endswith(":instance/web-1")
    assert (queued[2].created, queued[2].next_attempt) == (6.0, 6.0)


def test_a_delivery_is_claimed_by_one_sender_at_a_time(services: Services) -> None:
    stored = store_deployment(
        services,
        [{"triggerName": "t", "triggerTargetArn": "http://x/", "triggerEvents": ALL_EVENTS}],
    )
    machine.step(stored.state, messages.Start(), 5.0)
    with services.db.tx() as conn:
        notify.Notices(conn, stored, 5.0, "us-east-1").add("DeploymentStart", None)
    with services.db.tx() as conn:
        first = deliveries.claim_due(conn, 6.0, 10, lease=15.0)
    with services.db.tx() as conn:
        second = deliveries.claim_due(conn, 6.0, 10, lease=15.0)
        later = deliveries.claim_due(conn, 21.0, 10, lease=15.0)  # the lease ran out
    assert len(first) == 1
    assert second == []
    assert [d.id for d in later] == [first[0].id]


# ---- delivery ------------------------------------------------------------------------------


def queue(services: Services, url: str, events: list[str]) -> StoredDeployment:
    stored = store_deployment(
        services, [{"triggerName": "hook", "triggerTargetArn": url, "triggerEvents": ALL_EVENTS}]
    )
    machine.step(stored.state, messages.Start(), time.time())
    with services.db.tx() as conn:
        for event in events:
            target = "web-1" if event.startswith("Instance") else None
            notify.Notices(conn, stored, time.time(), "us-east-1").add(event, target)
    return stored


def run_until_settled(services: Services, deliverer: Deliverer, timeout: float = 20.0) -> float:
    """Run the deliverer until no delivery is Pending; returns the seconds it took.
    Meanwhile the event loop must never stall (sends happen in threads)."""

    async def scenario() -> tuple[float, float]:
        deliverer.start()
        loop = asyncio.get_running_loop()
        begun = loop.time()
        stall = 0.0
        try:
            while True:
                with services.db.tx() as conn:
                    if deliveries.next_due(conn) is None:
                        return loop.time() - begun, stall
                assert loop.time() - begun < timeout, "deliveries did not settle"
                before = loop.time()
                await asyncio.sleep(0.01)
                stall = max(stall, loop.time() - before - 0.01)
        finally:
            await deliverer.stop()

    elapsed, stall = asyncio.run(scenario())
    assert stall < 0.15, f"the event loop stalled for {stall:.2f}s"
    return elapsed


def delivered(services: Services) -> list[deliveries.Delivery]:
    with services.db.tx() as conn:
        return deliveries.deliveries_of(conn, "d-NOTIFY001")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_signed_delivery_retried_with_backoff_until_the_webhook_recovers(
    services: Services,
) -> None:
    hook = Receiver(fail_first=3)
    try:
        queue(services, hook.url, ["DeploymentStart"])
        run_until_settled(services, Deliverer(services, retry_base=0.1, poll_seconds=0.01))
    finally:
        hook.close()
    [row] = delivered(services)
    assert (row.status, row.attempts, row.last_error) == ("Delivered", 4, None)
    assert row.delivered is not None
    assert len(hook.requests) == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(hook.requests)]
    for gap, wanted in zip(gaps, (0.1, 0.2, 0.4), strict=True):
        assert gap >= wanted * 0.9, gaps
    secret = notify.trigger_secret(services.db, GROUP_ID, "hook")
    for request in hook.requests:
        assert verify(request, secret)
        assert request.headers["X-Shipyard-Delivery"] == str(row.id)
        assert request.headers["X-Shipyard-Event"] == "DeploymentStart"
        assert request.headers["Content-Type"] == "application/json"
        assert request.payload == row.payload
    assert not verify(hook.requests[0], "another secret")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_dead_webhook_ends_failed_after_the_maximum_attempts(services: Services) -> None:
    queue(services, dead_url(), ["DeploymentStart", "InstanceStart"])
    elapsed = run_until_settled(services, Deliverer(services, retry_base=0.01, poll_seconds=0.01))
    rows = delivered(services)
    assert [(r.status, r.attempts) for r in rows] == [("Failed", 8), ("Failed", 8)]
    assert all("cannot reach" in (r.last_error or "") for r in rows), rows
    assert elapsed >= 0.01 * (2**7 - 1)  # 1+2+...+64 backoff units between 8 attempts


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_webhook_slower_than_the_timeout_counts_as_failed(services: Services) -> None:
    hook = Receiver(delay=5.0)
    try:
        queue(services, hook.url, ["DeploymentStart"])
        deliverer = Deliverer(services, timeout=0.3, max_attempts=1, poll_seconds=0.01)
        elapsed = run_until_settled(services, deliverer)
    finally:
        hook.close()
    [row] = delivered(services)
    assert (row.status, row.attempts) == ("Failed", 1)
    assert "timed out" in (row.last_error or ""), row.last_error
    assert elapsed < 2.0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_slow_webhooks_are_sent_concurrently_but_bounded(services: Services) -> None:
    hook = Receiver(delay=0.3)
    try:
        queue(services, hook.url, ["DeploymentStart", "InstanceStart"] * 3)
        deliverer = Deliverer(services, concurrency=2, poll_seconds=0.01)
        elapsed = run_until_settled(services, deliverer)
    finally:
        hook.close()
    assert [r.status for r in delivered(services)] == ["Delivered"] * 6
    assert hook.max_in_flight == 2
    assert 0.85 <= elapsed < 3.0  # three rounds of two, not six one after another


def test_pending_deliveries_are_sent_after_a_restart(
    services: Services, receiver: Receiver
) -> None:
    queue(services, receiver.url, ["DeploymentStart", "InstanceStart"])
    # A previous process claimed one delivery and died before sending it.
    with services.db.tx() as conn:
        [abandoned] = deliveries.claim_due(conn, time.time(), 1, lease=0.2)
    run_until_settled(services, Deliverer(services, poll_seconds=0.01))
    assert [r.status for r in delivered(services)] == ["Delivered", "Delivered"]
    assert sorted(r.headers["X-Shipyard-Delivery"] for r in receiver.requests) == sorted(
        str(r.id) for r in delivered(services)
    )
    assert abandoned.id in {r.id for r in delivered(services)}


# ---- the extension operations ------------------------------------------------------------


def test_trigger_secrets_and_deliveries_on_the_api(
    live_server: LiveServer, receiver: Receiver
) -> None:
    cd = live_server.client("codedeploy")
    cd.create_application(applicationName="shop")
    cd.register_on_premises_instance(
        instanceName="idle-1", iamUserArn="arn:aws:iam::000000000000:user/idle-1"
    )
    cd.add_tags_to_on_premises_instances(
        instanceNames=["idle-1"], tags=[{"Key": "role", "Value": "web"}]
    )
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        triggerConfigurations=[
            {"triggerName": "hook", "triggerTargetArn": receiver.url, "triggerEvents": ALL_EVENTS}
        ],
    )
    ask = {"applicationName": "shop", "deploymentGroupName": "web", "triggerName": "hook"}
    status, first = raw_call(live_server, "ShipyardGetTriggerSecret", ask)
    assert status == 200 and len(first["secret"]) == 64
    assert raw_call(live_server, "ShipyardGetTriggerSecret", ask)[1] == first

    for body, error in [
        ({**ask, "triggerName": "nope"}, "InvalidTriggerConfigException"),
        ({k: v for k, v in ask.items() if k != "triggerName"}, "InvalidTriggerConfigException"),
        ({**ask, "applicationName": "none"}, "ApplicationDoesNotExistException"),
        ({**ask, "deploymentGroupName": "none"}, "DeploymentGroupDoesNotExistException"),
    ]:
        status, answer = raw_call(live_server, "ShipyardGetTriggerSecret", body)
        assert (status, answer["__type"]) == (400, error), answer
    status, answer = raw_call(
        live_server, "ShipyardListTriggerDeliveries", {"deploymentId": "d-NOSUCH001"}
    )
    assert (status, answer["__type"]) == (400, "DeploymentDoesNotExistException")

    # No agent runs: the deployment starts, its one host starts, and it waits.
    s3 = live_server.client("s3")
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="app.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    deployment_id = cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": "bundles", "key": "app.zip", "bundleType": "zip"},
        },
    )["deploymentId"]
    got = receiver.wait_for(2)
    assert sorted(r.event for r in got) == ["DeploymentStart", "InstanceStart"]
    assert all(verify(r, first["secret"]) for r in got)

    def delivered() -> list[dict[str, Any]] | None:
        listed: list[dict[str, Any]] = raw_call(
            live_server, "ShipyardListTriggerDeliveries", {"deploymentId": deployment_id}
        )[1]["deliveries"]
        return listed if all(d["status"] == "Delivered" for d in listed) else None

    listed = wait_until(delivered, "every delivery to be Delivered", 10)
    assert [(d["eventType"], d["status"], d["attempts"]) for d in listed] == [
        ("DeploymentStart", "Delivered", 1),
        ("InstanceStart", "Delivered", 1),
    ]
    assert all(d["triggerName"] == "hook" and d["url"] == receiver.url for d in listed)
    assert all(d["delivered"] >= d["created"] for d in listed)
    cd.stop_deployment(deploymentId=deployment_id)
