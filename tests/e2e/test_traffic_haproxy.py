"""Traffic control against a real HAProxy, real agents and a real web app on every host.

Each host runs the web app Shipyard deploys (tests/e2e/haproxy_fleet.py) on its own
loopback port; HAProxy balances over them, and Shipyard's server takes hosts out of it
and puts them back through the runtime API. Steady load runs through HAProxy while
deployments and rollbacks go on, and every request is counted: none may fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from shipyard.engine.bluegreen import ALLOW_EVENTS, BLOCK_EVENTS
from shipyard.engine.lifecycle import IN_PLACE_WITH_TRAFFIC_CONTROL
from tests.e2e.conftest import wait_until
from tests.e2e.haproxy_fleet import (
    StateSampler,
    WebFleet,
    create_in_place_group,
    deploy,
    info,
    make_blue_green,
    web_fleet,
)
from tests.e2e.http_load import Request, between, start_load, summarize

WEB = ["web-1", "web-2", "web-3"]
BLUE = ["blue-1", "blue-2"]
GREEN = ["green-1", "green-2"]
UP = ("ready", True)
OUT = ("maint", False)  # taken out, and its health forced down until it comes back
# Steady, not flat out: the server, agents and apps share the machine with the load.
LOAD = {"connections": 16, "rate": 1500.0, "seconds": 90.0}


@pytest.fixture
def in_place(tmp_path: Path) -> Iterator[WebFleet]:
    """Three hosts in group ``web`` (OneAtATime, with traffic control), serving v1."""
    with web_fleet(tmp_path, WEB) as web:
        web.add_hosts(WEB, {"role": "web"})
        create_in_place_group(web, {"role": "web"}, rollback=True)
        first = deploy(web, web.revision("v1"))
        assert web.fleet.wait(first)["status"] == "Succeeded", web.fleet.targets(first)
        assert web.servers() == dict.fromkeys(WEB, UP)
        yield web


@pytest.fixture
def blue_green(tmp_path: Path) -> Iterator[WebFleet]:
    """Blue hosts serving v1 (installed in place), green hosts idle and out of HAProxy,
    and group ``web`` turned blue/green with ready and termination waits."""
    with web_fleet(tmp_path, BLUE + GREEN) as web:
        web.add_hosts(BLUE, {"role": "web"})
        web.add_hosts(GREEN, {"role": "next"})
        router = web.balancer.router()
        for name in GREEN:  # the replacement fleet takes no traffic yet
            router.block("web", name, drain_timeout=0)
        create_in_place_group(web, {"role": "web"}, config="CodeDeployDefault.AllAtOnce")
        first = deploy(web, web.revision("v1"))
        assert web.fleet.wait(first)["status"] == "Succeeded", web.fleet.targets(first)
        yield web


def seconds(value: datetime) -> float:
    return value.timestamp()


def answers(web: WebFleet, count: int = 12) -> set[str]:
    """What HAProxy's frontend answers ``count`` plain GETs with (all must be 200)."""
    out = web.balancer.directory / "probe.tsv"
    requests = start_load(web.balancer.url, out, connections=1, max_requests=count).finish()
    assert [r for r in requests if r.failed] == []
    return {r.body for r in requests}


def no_failures(requests: list[Request], at_least: int) -> None:
    summary = summarize(requests)
    failed = [r for r in requests if r.failed]
    assert failed == [], f"{len(failed)} of {summary.sent} failed, first: {failed[:5]}"
    assert summary.sent >= at_least, summary


# ---- in place ------------------------------------------------------------------------


def test_in_place_takes_one_host_out_at_a_time_between_block_and_allow(
    in_place: WebFleet,
) -> None:
    web = in_place
    with StateSampler(web.balancer, interval=0.005) as sampler:
        deployment_id = deploy(web, web.revision("v2"))
        assert web.fleet.wait(deployment_id)["status"] == "Succeeded"
    targets = web.fleet.targets(deployment_id)
    windows: dict[str, tuple[float, float, float, float]] = {}
    for name in WEB:
        events = targets[name]["lifecycleEvents"]
        assert [e["lifecycleEventName"] for e in events] == list(IN_PLACE_WITH_TRAFFIC_CONTROL)
        assert {e["status"] for e in events} == {"Succeeded"}
        by_name = {e["lifecycleEventName"]: e for e in events}
        block, allow = by_name["BlockTraffic"], by_name["AllowTraffic"]
        windows[name] = (
            seconds(block["startTime"]),
            seconds(block["endTime"]),
            seconds(allow["startTime"]),
            seconds(allow["endTime"]),
        )
    samples = sampler.samples
    for sample in samples:
        out = [n for n, state in sample.servers.items() if state != UP]
        assert len(out) <= 1, f"more than one server out of service at once: {sample}"
        for name, (block_start, block_end, allow_start, allow_end) in windows.items():
            if sample.after > block_end and sample.before < allow_start:
                assert sample.servers[name] == OUT, (name, sample, windows[name])
            elif sample.before < block_start or sample.after > allow_end:
                assert sample.servers[name] == UP, (name, sample, windows[name])
    for name, (_, block_end, allow_start, _) in windows.items():
        inside = [s for s in samples if s.after > block_end and s.before < allow_start]
        assert len(inside) >= 3, f"too few samples while {name} was out: {len(inside)}"
    assert web.servers() == dict.fromkeys(WEB, UP)
    assert answers(web, 30) == {f"v2 {name}" for name in WEB}


def test_in_place_deployment_and_its_rollback_drop_no_request(in_place: WebFleet) -> None:
    web = in_place
    load = start_load(web.balancer.url, web.balancer.directory / "deploy.tsv", **LOAD)
    deployment_id = deploy(web, web.revision("v2"))
    assert web.fleet.wait(deployment_id)["status"] == "Succeeded"
    requests = load.stop()
    no_failures(requests, at_least=2000)
    assert answers(web) == {f"v2 {name}" for name in WEB}

    # v3 is broken on web-2: its health check fails, so ValidateService fails there,
    # the deployment fails (OneAtATime, not the last host) and rolls back to v2.
    load = start_load(web.balancer.url, web.balancer.directory / "rollback.tsv", **LOAD)
    failing = deploy(web, web.revision("v3", unhealthy_on=["web-2"]))
    failed = web.fleet.wait(failing)
    assert failed["status"] == "Failed"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    assert web.fleet.wait(rollback_id)["status"] == "Succeeded", web.fleet.targets(rollback_id)
    requests = load.stop()
    no_failures(requests, at_least=2000)
    events = web.fleet.targets(failing)["web-2"]["lifecycleEvents"]
    failed_events = [e["lifecycleEventName"] for e in events if e["status"] == "Failed"]
    assert failed_events == ["ValidateService"]
    assert sorted(web.fleet.targets(rollback_id)) == ["web-1", "web-2"]
    assert web.servers() == dict.fromkeys(WEB, UP)
    assert answers(web) == {f"v2 {name}" for name in WEB}


# ---- blue/green ----------------------------------------------------------------------

GREEN_HOSTS = {"tagFilters": [{"Key": "role", "Value": "next", "Type": "KEY_AND_VALUE"}]}


def timeline(web, deployment_id):
    d = info(web, deployment_id)
    t0 = d["createTime"].timestamp()
    rows = []
    for name, t in web.fleet.targets(deployment_id).items():
        for e in t["lifecycleEvents"]:
            st = e.get("startTime"); en = e.get("endTime")
            rows.append((st.timestamp() - t0 if st else -1, en.timestamp() - t0 if en else -1, name, e["lifecycleEventName"], e["status"]))
    for r in sorted(rows):
        print("DEBUG %7.2f %7.2f %s %s %s" % r)


def labels(web: WebFleet, deployment_id: str) -> dict[str, str]:
    return {name: t["instanceLabel"] for name, t in web.fleet.targets(deployment_id).items()}


def wait_for_status(web: WebFleet, deployment_id: str, status: str) -> None:
    wait_until(lambda: info(web, deployment_id)["status"] == status, status)


def test_blue_green_reroutes_after_the_ready_wait_and_retires_blue(blue_green: WebFleet) -> None:
    web = blue_green
    make_blue_green(web)
    before = {**dict.fromkeys(BLUE, UP), **dict.fromkeys(GREEN, OUT)}
    assert web.servers() == before
    load = start_load(web.balancer.url, web.balancer.directory / "reroute.tsv", **LOAD)
    deployment_id = deploy(web, web.revision("v2"), targetInstances=GREEN_HOSTS)
    wait_for_status(web, deployment_id, "Ready")
    assert info(web, deployment_id)["deploymentOverview"]["Ready"] == 2
    assert labels(web, deployment_id) == {
        **dict.fromkeys(BLUE, "Blue"),
        **dict.fromkeys(GREEN, "Green"),
    }
    assert web.servers() == before  # installed and validated, but no traffic moved yet

    continued = time.time()
    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    try:
        wait_until(
            lambda: info(web, deployment_id)["instanceTerminationWaitTimeStarted"] is True,
            "termination wait",
        )
    except AssertionError:
        import json
        print("DEBUG", time.time() - continued, json.dumps(web.fleet.targets(deployment_id), default=str, indent=1))
        print("DEBUG", web.servers())
        raise
    rerouted = time.time()
    assert web.servers() == {**dict.fromkeys(BLUE, OUT), **dict.fromkeys(GREEN, UP)}
    assert info(web, deployment_id)["status"] == "InProgress"

    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")
    assert web.fleet.wait(deployment_id)["status"] == "Succeeded"
    requests = load.stop()
    timeline(web, deployment_id)
    no_failures(requests, at_least=2000)
    assert set(summarize(between(requests, 0, continued)).bodies) == {f"v1 {n}" for n in BLUE}
    after = summarize(between(requests, rerouted, time.time())).bodies
    assert set(after) == {f"v2 {n}" for n in GREEN}
    for name in BLUE:  # TERMINATE: the original hosts left the fleet
        instance = web.cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
        assert "deregisterTime" in instance


def test_blue_green_rollback_moves_traffic_back_to_blue(blue_green: WebFleet) -> None:
    web = blue_green
    make_blue_green(web, rollback=True)
    load = start_load(web.balancer.url, web.balancer.directory / "rollback.tsv", **LOAD)
    revision = web.revision("v2", failing_hook="AfterAllowTraffic")
    deployment_id = deploy(web, revision, targetInstances=GREEN_HOSTS)
    wait_for_status(web, deployment_id, "Ready")
    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    failed = web.fleet.wait(deployment_id)
    assert failed["status"] == "Failed"
    rollback_id = failed["rollbackInfo"]["rollbackDeploymentId"]
    rollback = web.fleet.wait(rollback_id)
    assert rollback["status"] == "Succeeded", web.fleet.targets(rollback_id)
    assert rollback["creator"] == "codeDeployRollback"
    requests = load.stop()
    no_failures(requests, at_least=2000)
    # Green took traffic between its AllowTraffic and the rollback, then gave it back.
    assert {f"v2 {n}" for n in GREEN} <= set(summarize(requests).bodies)
    assert web.servers() == {**dict.fromkeys(BLUE, UP), **dict.fromkeys(GREEN, OUT)}
    assert answers(web) == {f"v1 {n}" for n in BLUE}
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
