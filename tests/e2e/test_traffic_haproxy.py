"""Traffic control against a real HAProxy, real agents and a real web app on every host.

Each host runs the web app Shipyard deploys (tests/e2e/haproxy_fleet.py) on its own
loopback port; HAProxy balances over them, and Shipyard's server takes hosts out of it
and puts them back through the runtime API. Steady load runs through HAProxy while
deployments and rollbacks go on, and every request is counted: none may fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

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
from tests.e2e.http_load import Request, start_load, summarize

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
    with StateSampler(web.balancer) as sampler:
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
