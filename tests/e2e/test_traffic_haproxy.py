"""Traffic control against a real HAProxy, real agents and a real web app on every host.

Each host runs the web app Shipyard deploys (tests/e2e/haproxy_fleet.py) on its own
loopback port; HAProxy balances over them, and Shipyard's server takes hosts out of it
and puts them back through the runtime API. Steady load (tests/e2e/http_load.py) runs
through HAProxy while deployments and rollbacks go on, and every request is counted:
none may fail.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipyard.engine.lifecycle import IN_PLACE_WITH_TRAFFIC_CONTROL
from shipyard.engine.strategies.blue_green import ALLOW_EVENTS, BLOCK_EVENTS
from tests.e2e.haproxy_fleet import (
    BACKEND,
    TROUBLE,
    Balancer,
    WebFleet,
    create_in_place_group,
    deploy,
    info,
    make_blue_green,
    start_balancer,
    web_fleet,
)
from tests.e2e.http_load import Request, between, start_load, summarize
from tests.support import wait_until

WEB = ["web-1", "web-2", "web-3"]
BLUE = ["blue-1", "blue-2"]
GREEN = ["green-1", "green-2"]
GREEN_HOSTS = {"tagFilters": [{"Key": "role", "Value": "next", "Type": "KEY_AND_VALUE"}]}
UP = ("ready", True)
OUT = ("maint", False)  # HAProxy reports a server in maintenance as down
STEADY = 1000  # requests of steady load before and after each cut-over


@pytest.fixture
def in_place(tmp_path: Path) -> Iterator[WebFleet]:
    """Three hosts in group ``web`` (OneAtATime, with traffic control), serving v1.

    v1 is the first deployment: the servers are DOWN in HAProxy until their app runs,
    so BlockTraffic starts from a down server and AllowTraffic brings it up."""
    with web_fleet(tmp_path, WEB) as web:
        web.add_hosts(WEB, {"role": "web"})
        wait_until(lambda: web.servers() == dict.fromkeys(WEB, ("ready", False)), "all down")
        create_in_place_group(web, {"role": "web"}, rollback=True)
        first = deploy(web, web.revision("v1"))
        assert web.fleet.wait(first)["status"] == "Succeeded", web.fleet.targets(first)
        events_in_order(web, first)
        assert web.servers() == dict.fromkeys(WEB, UP)
        yield web


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[WebFleet]:
    """Blue hosts serving v1 (installed in place), green hosts idle and out of HAProxy;
    the test turns group ``web`` blue/green."""
    with web_fleet(tmp_path, BLUE + GREEN) as web:
        web.add_hosts(BLUE, {"role": "web"})
        web.add_hosts(GREEN, {"role": "next"})
        router = web.balancer.router()
        for name in GREEN:  # the replacement fleet takes no traffic yet
            router.block(BACKEND, name, drain_timeout=0)
        create_in_place_group(web, {"role": "web"}, config="CodeDeployDefault.AllAtOnce")
        first = deploy(web, web.revision("v1"))
        assert web.fleet.wait(first)["status"] == "Succeeded", web.fleet.targets(first)
        assert web.servers() == {**dict.fromkeys(BLUE, UP), **dict.fromkeys(GREEN, OUT)}
        yield web


def events_in_order(web: WebFleet, deployment_id: str) -> dict[str, dict[str, dict[str, float]]]:
    """Check every host ran the 13 events in order, all Succeeded; returns each host's
    events' start and end times (wall clock)."""
    times = {}
    for name, target in web.fleet.targets(deployment_id).items():
        events = target["lifecycleEvents"]
        assert [e["lifecycleEventName"] for e in events] == list(IN_PLACE_WITH_TRAFFIC_CONTROL)
        assert {e["status"] for e in events} == {"Succeeded"}, (name, events)
        times[name] = {
            e["lifecycleEventName"]: {
                "start": e["startTime"].timestamp(),
                "end": e["endTime"].timestamp(),
            }
            for e in events
        }
    return times


def answers(web: WebFleet, count: int = 12) -> set[str]:
    """What HAProxy's frontend answers ``count`` plain GETs with (all must be 200)."""
    out = web.balancer.directory / "probe.tsv"
    requests = start_load(web.balancer.url, out, connections=1, max_requests=count).finish()
    assert [r for r in requests if r.failed] == []
    return {r.body for r in requests}


@dataclass
class Run:
    """What a stretch of steady load saw: every request, and what HAProxy had to hide
    (retries, redispatches) or could not (connection and response errors)."""

    requests: list[Request] = field(default_factory=list)
    trouble: dict[str, int] = field(default_factory=dict)


@contextlib.contextmanager
def steady_load(web: WebFleet, name: str) -> Iterator[Run]:
    """Load through HAProxy for the whole block, with STEADY requests before and after."""
    run = Run()
    before = web.balancer.trouble()
    load = start_load(web.balancer.url, web.balancer.directory / f"{name}.tsv", seconds=120)
    try:
        load.wait_for(STEADY)
        yield run
        load.wait_for(load.sent() + STEADY)
    finally:
        run.requests.extend(load.stop())
    after = web.balancer.trouble()
    run.trouble = {key: after[key] - before[key] for key in after}


def no_failures(run: Run, during: list[Request]) -> None:
    failed = [r for r in run.requests if r.failed]
    assert failed == [], f"{len(failed)} of {len(run.requests)} failed, first: {failed[:5]}"
    assert run.trouble == dict.fromkeys(TROUBLE, 0)
    assert len(run.requests) >= 2 * STEADY + len(during)
    assert len(during) >= 200, f"too little traffic during the cut-over: {len(during)}"


@dataclass(frozen=True)
class Sample:
    """HAProxy's servers as one ``describe`` saw them, asked between ``after`` and
    ``before`` (wall clock): server -> (admin state, health)."""

    after: float
    before: float
    servers: dict[str, tuple[str, bool | None]]


class StateSampler:
    """Samples HAProxy's servers in a thread, about every ``interval`` s, until the
    ``with`` block ends; an error on the way is raised there."""

    def __init__(self, balancer: Balancer, interval: float) -> None:
        self._router = balancer.router()
        self._interval = interval
        self._stop = threading.Event()
        self._error: list[Exception] = []
        self.samples: list[Sample] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StateSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._error:
            raise self._error[0]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                after = time.time()
                found = self._router.describe(BACKEND)
                states: dict[str, tuple[str, bool | None]] = {
                    s.server: (s.admin, s.healthy) for s in found
                }
                self.samples.append(Sample(after, time.time(), states))
                self._stop.wait(self._interval)
        except Exception as exc:
            self._error.append(exc)


# ---- in place ------------------------------------------------------------------------


def test_in_place_takes_one_host_out_at_a_time_between_block_and_allow(
    in_place: WebFleet,
) -> None:
    web = in_place
    with StateSampler(web.balancer, interval=0.005) as sampler:
        deployment_id = deploy(web, web.revision("v2"))
        assert web.fleet.wait(deployment_id)["status"] == "Succeeded"
    times = events_in_order(web, deployment_id)
    for sample in sampler.samples:
        out = [name for name, state in sample.servers.items() if state != UP]
        assert len(out) <= 1, f"more than one server out of service at once: {sample}"
        for name, events in times.items():
            block, allow = events["BlockTraffic"], events["AllowTraffic"]
            # HAProxy was asked between ``after`` and ``before``: judge only samples
            # wholly inside or wholly outside the host's time out of service.
            if sample.after > block["end"] and sample.before < allow["start"]:
                assert sample.servers[name] == OUT, (name, sample, events)
            elif sample.before < block["start"] or sample.after > allow["end"]:
                assert sample.servers[name] == UP, (name, sample, events)
    for name, events in times.items():
        block_end, allow_start = events["BlockTraffic"]["end"], events["AllowTraffic"]["start"]
        inside = [s for s in sampler.samples if s.after > block_end and s.before < allow_start]
        assert len(inside) >= 3, f"too few samples while {name} was out: {len(inside)}"
    assert web.servers() == dict.fromkeys(WEB, UP)
    assert answers(web, 30) == {f"v2 {name}" for name in WEB}


def test_in_place_deployment_and_its_rollback_drop_no_request(in_place: WebFleet) -> None:
    web = in_place
    with steady_load(web, "deploy") as run:
        deployment_id = deploy(web, web.revision("v2"))
        deployed = web.fleet.wait(deployment_id)
        finished = time.time()
    assert deployed["status"] == "Succeeded"
    during = between(run.requests, deployed["createTime"].timestamp(), finished)
    no_failures(run, during)
    assert answers(web) == {f"v2 {name}" for name in WEB}

    # v3 is broken on web-2: its health check fails there, so ValidateService fails, the
    # deployment fails (OneAtATime, not the last host) and rolls back to v2.
    with steady_load(web, "rollback") as run:
        failing = deploy(web, web.revision("v3", unhealthy_on=["web-2"]))
        failed = web.fleet.wait(failing)
        assert failed["status"] == "Failed"
        rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
        rollback = web.fleet.wait(rollback_id)
        finished = time.time()
    assert rollback["status"] == "Succeeded", web.fleet.targets(rollback_id)
    during = between(run.requests, failed["createTime"].timestamp(), finished)
    no_failures(run, during)
    served = summarize(during).bodies
    assert {body.split()[0] for body in served} == {"v2", "v3"}
    # HAProxy never sent a request to broken web-2's v3, nor to web-3 (never reached).
    assert "v3 web-2" not in served and "v3 web-3" not in served
    events = web.fleet.targets(failing)["web-2"]["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in events if e["status"] == "Failed"] == [
        "ValidateService"
    ]
    assert sorted(web.fleet.targets(rollback_id)) == ["web-1", "web-2"]  # web-3 kept v2
    events_in_order(web, rollback_id)
    assert web.servers() == dict.fromkeys(WEB, UP)
    assert answers(web) == {f"v2 {name}" for name in WEB}


# ---- blue/green ----------------------------------------------------------------------


def labels(web: WebFleet, deployment_id: str) -> dict[str, str]:
    return {name: t["instanceLabel"] for name, t in web.fleet.targets(deployment_id).items()}


def wait_for_status(web: WebFleet, deployment_id: str, status: str) -> None:
    wait_until(lambda: info(web, deployment_id)["status"] == status, f"status {status}")


def test_blue_green_reroutes_after_the_ready_wait_and_retires_blue(blue_green: WebFleet) -> None:
    web = blue_green
    make_blue_green(web)
    before = {**dict.fromkeys(BLUE, UP), **dict.fromkeys(GREEN, OUT)}
    with steady_load(web, "reroute") as run:
        deployment_id = deploy(web, web.revision("v2"), targetInstances=GREEN_HOSTS)
        wait_for_status(web, deployment_id, "Ready")
        assert info(web, deployment_id)["deploymentOverview"]["Ready"] == 2
        assert labels(web, deployment_id) == {
            **dict.fromkeys(BLUE, "Blue"),
            **dict.fromkeys(GREEN, "Green"),
        }
        assert web.servers() == before  # installed and validated, no traffic moved yet

        continued = time.time()
        web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
        wait_until(
            lambda: info(web, deployment_id)["instanceTerminationWaitTimeStarted"] is True,
            "the termination wait",
        )
        rerouted = time.time()
        assert info(web, deployment_id)["status"] == "InProgress"
        assert web.servers() == {**dict.fromkeys(BLUE, OUT), **dict.fromkeys(GREEN, UP)}
    no_failures(run, between(run.requests, continued, rerouted))
    assert set(summarize(between(run.requests, 0, continued)).bodies) == {f"v1 {n}" for n in BLUE}
    after = summarize(between(run.requests, rerouted, time.time())).bodies
    assert set(after) == {f"v2 {n}" for n in GREEN}

    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")
    assert web.fleet.wait(deployment_id)["status"] == "Succeeded"
    for name in BLUE:  # TERMINATE: the original hosts left the fleet
        instance = web.cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
        assert "deregisterTime" in instance


def test_blue_green_rollback_moves_traffic_back_to_blue(blue_green: WebFleet) -> None:
    web = blue_green
    make_blue_green(web, rollback=True)
    with steady_load(web, "rollback") as run:
        revision = web.revision("v2", failing_hook="AfterAllowTraffic")
        deployment_id = deploy(web, revision, targetInstances=GREEN_HOSTS)
        wait_for_status(web, deployment_id, "Ready")
        continued = time.time()
        web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
        failed = web.fleet.wait(deployment_id)
        assert failed["status"] == "Failed"
        rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
        rollback = web.fleet.wait(rollback_id)
        rolled_back = time.time()
    assert rollback["status"] == "Succeeded", web.fleet.targets(rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    during = between(run.requests, continued, rolled_back)
    no_failures(run, during)
    # Green took traffic from its AllowTraffic until the rollback took it back.
    assert {f"v2 {n}" for n in GREEN} <= set(summarize(during).bodies)
    after = summarize(between(run.requests, rolled_back, time.time())).bodies
    assert set(after) == {f"v1 {n}" for n in BLUE}
    assert web.servers() == {**dict.fromkeys(BLUE, UP), **dict.fromkeys(GREEN, OUT)}
    assert labels(web, rollback_id) == {
        **dict.fromkeys(BLUE, "Blue"),
        **dict.fromkeys(GREEN, "Green"),
    }
    events = {
        name: [e["lifecycleEventName"] for e in t["lifecycleEvents"]]
        for name, t in web.fleet.targets(rollback_id).items()
    }
    assert events == {
        **{name: list(ALLOW_EVENTS) for name in BLUE},
        **{name: list(BLOCK_EVENTS) for name in GREEN},
    }


def test_the_load_counts_what_haproxy_could_not_serve(tmp_path: Path) -> None:
    """The counting itself can fail: with every server out, each request is a 503."""
    balancer = start_balancer(tmp_path, ["web-1"])  # no app behind it: the server is down
    try:
        requests = start_load(balancer.url, tmp_path / "down.tsv", max_requests=50).finish()
    finally:
        balancer.stop()
    assert len(requests) == 50
    assert {(r.status, r.failed) for r in requests} == {(503, True)}
    assert summarize(requests).failures == 50
