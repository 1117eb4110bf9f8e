"""Zero downtime: steady HTTP load through a real HAProxy while Shipyard deploys to real
agents with traffic control, counting every request.

Run (as root: each agent gets a private mount namespace, like the e2e tests):

    .venv/bin/python bench/zero_downtime.py [--phase-seconds 5] [--connections 16] [--rate 0]

Two fleets, one after the other, each with its own HAProxy and Shipyard server (loopback
only, everything stopped at the end). Every host runs the small web app of
tests/e2e/haproxy_fleet.py, deployed by Shipyard:

- in place, 3 hosts, OneAtATime, with traffic control:
  "in-place deploy" v1 -> v2; then "in-place rollback": v3, broken on web-2 (its health
  check fails, so ValidateService does), fails and is rolled back to v2 automatically;
- blue/green, 2 blue hosts serving v1 and 2 green hosts:
  "blue/green rollback": v2 installed on green, rerouted, its AfterAllowTraffic fails,
  the automatic rollback moves traffic back to blue; then "blue/green reroute": a good v2
  installed on green, ContinueDeployment(READY_WAIT) moves traffic to green.

One load generator (tests/e2e/http_load.py: its own process, asyncio, keep-alive
connections, every request timestamped) runs through each fleet's whole run. Each
cut-over is cut into three phases by the requests' start times: the ``--phase-seconds``
before it (a quiet pause), during it (from CreateDeployment, or from ContinueDeployment
for blue/green, until the deployment and any rollback have finished, or until the
termination wait began), and the ``--phase-seconds`` after it. The in-place rollback
follows its deployment after one pause, so that pause is both one's "after" and the
other's "before". A request fails when it gets no answer or a status other than 2xx.
Each fleet's line "whole run" adds HAProxy's own counters: connection and response
errors, retries and redispatches (what ``retries`` and ``option redispatch`` would have
hidden from the clients).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.haproxy_fleet import (
    WebFleet,
    create_in_place_group,
    deploy,
    info,
    make_blue_green,
    web_fleet,
)
from tests.e2e.http_load import Load, Request, between, start_load, summarize

from shipyard.demo.fleet import can_isolate

GREEN_HOSTS = {"tagFilters": [{"Key": "role", "Value": "next", "Type": "KEY_AND_VALUE"}]}


@dataclass(frozen=True)
class CutOver:
    name: str
    start: float
    end: float


def wait_for(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def finished(web: WebFleet, deployment_id: str, expect: str) -> dict[str, object]:
    found = web.fleet.wait(deployment_id, timeout=120)
    if found["status"] != expect:
        raise SystemExit(f"{deployment_id} ended {found['status']}, not {expect}: {found}")
    return found


def in_place(web: WebFleet, load_for: Callable[[WebFleet], Load], pause: float) -> list[CutOver]:
    web.add_hosts(["web-1", "web-2", "web-3"], {"role": "web"})
    create_in_place_group(web, {"role": "web"}, rollback=True)
    finished(web, deploy(web, web.revision("v1")), "Succeeded")
    load = load_for(web)
    cut_overs = []
    time.sleep(pause)
    start = time.time()
    finished(web, deploy(web, web.revision("v2")), "Succeeded")
    cut_overs.append(CutOver("in-place deploy", start, time.time()))
    time.sleep(pause)
    start = time.time()
    failed = finished(web, deploy(web, web.revision("v3", unhealthy_on=["web-2"])), "Failed")
    rollback = failed["rollbackInfo"]
    assert isinstance(rollback, dict)
    finished(web, rollback["rollbackDeploymentId"], "Succeeded")
    cut_overs.append(CutOver("in-place rollback", start, time.time()))
    time.sleep(pause)
    load.stop()
    return cut_overs


def blue_green(web: WebFleet, load_for: Callable[[WebFleet], Load], pause: float) -> list[CutOver]:
    web.add_hosts(["blue-1", "blue-2"], {"role": "web"})
    web.add_hosts(["green-1", "green-2"], {"role": "next"})
    router = web.balancer.router()
    for name in ("green-1", "green-2"):
        router.block("web", name, drain_timeout=0)
    create_in_place_group(web, {"role": "web"}, config="CodeDeployDefault.AllAtOnce")
    finished(web, deploy(web, web.revision("v1")), "Succeeded")
    make_blue_green(web, rollback=True)
    load = load_for(web)
    cut_overs = []

    bad = web.revision("v2-bad", failing_hook="AfterAllowTraffic")
    deployment_id = deploy(web, bad, targetInstances=GREEN_HOSTS)
    wait_for(lambda: info(web, deployment_id)["status"] == "Ready", "Ready")
    time.sleep(pause)
    start = time.time()
    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    failed = finished(web, deployment_id, "Failed")
    rollback = failed["rollbackInfo"]
    assert isinstance(rollback, dict)
    finished(web, rollback["rollbackDeploymentId"], "Succeeded")
    cut_overs.append(CutOver("blue/green rollback", start, time.time()))
    time.sleep(pause)

    deployment_id = deploy(web, web.revision("v2"), targetInstances=GREEN_HOSTS)
    wait_for(lambda: info(web, deployment_id)["status"] == "Ready", "Ready")
    time.sleep(pause)
    start = time.time()
    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    wait_for(
        lambda: info(web, deployment_id)["instanceTerminationWaitTimeStarted"] is True,
        "the termination wait",
    )
    cut_overs.append(CutOver("blue/green reroute", start, time.time()))
    time.sleep(pause)
    load.stop()
    web.cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")
    finished(web, deployment_id, "Succeeded")
    return cut_overs


def served(requests: list[Request]) -> str:
    """Which revisions answered: "v1 61% v2 39%"."""
    counts: dict[str, int] = {}
    for request in requests:
        if not request.failed:
            version = request.body.split()[0]
            counts[version] = counts.get(version, 0) + 1
    total = sum(counts.values()) or 1
    return " ".join(f"{v} {100 * n / total:.0f}%" for v, n in sorted(counts.items()))


def report(cut_overs: list[CutOver], requests: list[Request], pause: float) -> None:
    for cut in cut_overs:
        phases = [
            ("before", cut.start - pause, cut.start),
            ("during", cut.start, cut.end),
            ("after", cut.end, cut.end + pause),
        ]
        for phase, start, end in phases:
            chosen = between(requests, start, end)
            summary = summarize(chosen)
            seconds = end - start
            print(
                f"{cut.name if phase == 'before' else '':<20} {phase:<7} {seconds:>6.2f}s "
                f"{summary.sent:>8} {summary.failures:>8} {summary.sent / seconds:>7.0f} "
                f"{summary.p50 * 1000:>7.1f} {summary.p99 * 1000:>7.1f}  {served(chosen)}"
            )


def start_run_load(args: argparse.Namespace, out: Path, loads: list[Load], web: WebFleet) -> Load:
    """The load of one fleet's whole run (bounded: 10 minutes, 5 million requests)."""
    load = start_load(
        web.balancer.url,
        out,
        connections=args.connections,
        rate=args.rate,
        seconds=600,
        max_requests=5_000_000,
    )
    loads.append(load)
    return load


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s cap, 0: none")
    args = parser.parse_args()
    if shutil.which("haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        raise SystemExit("haproxy is not installed (Debian package haproxy; scripts/install)")
    if not can_isolate():
        raise SystemExit("needs private mount namespaces (unshare --mount): run as root")
    load1, load5, _ = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load1:.1f} (1 min) {load5:.1f} (5 min); "
        f"python {sys.version.split()[0]}"
    )
    print(
        f"load: {args.connections} keep-alive connections, "
        f"{'no rate cap' if not args.rate else f'at most {args.rate:g} requests/s'}; "
        f"phases of {args.phase_seconds:g} s before and after each cut-over"
    )
    print(
        f"{'cut-over':<20} {'phase':<7} {'window':>7} {'requests':>8} {'failures':>8} "
        f"{'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}  served"
    )
    everything: list[Request] = []
    scenarios = [("in-place", ["web-1", "web-2", "web-3"], in_place)]
    scenarios.append(("blue-green", ["blue-1", "blue-2", "green-1", "green-2"], blue_green))
    for name, servers, scenario in scenarios:
        with tempfile.TemporaryDirectory(prefix=f"shipyard-zero-{name}-") as tmp:
            loads: list[Load] = []
            load_for = functools.partial(start_run_load, args, Path(tmp) / "load.tsv", loads)
            try:
                with web_fleet(Path(tmp), servers) as web:
                    cut_overs = scenario(web, load_for, args.phase_seconds)
                    trouble = web.balancer.trouble()
            finally:
                for load in loads:
                    if load.process.poll() is None:
                        load.stop()
        requests = loads[0].requests
        report(cut_overs, requests, args.phase_seconds)
        whole = summarize(requests)
        span = requests[-1].started - requests[0].started if requests else 0.0
        print(
            f"{'':<20} whole run: {whole.sent} requests in {span:.1f} s, {whole.failures} failed; "
            f"HAProxy: {trouble['econ']} connection errors, {trouble['eresp']} response errors, "
            f"{trouble['wretr']} retries, {trouble['wredis']} redispatches"
        )
        everything += requests
    total = summarize(everything)
    print(f"total: {total.sent} requests, {total.failures} failed")
    return 1 if total.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
