"""Overhead: a no-op seven-event in-place deployment to 1 host, and AllAtOnce to 10
and 100 real agent processes.

Run: .venv/bin/python bench/fleet_overhead.py [--hosts 1,10,100] [--repeat 5]
         [--database sqlite|postgres]

Extends ``deploy_overhead.py``: the same real agents (``shipyard.demo.fleet``), but
the server runs in its own process (``python -m shipyard server``) so its CPU time
can be read from /proc, and the agents start a few at a time (100 Python processes
importing at once would swamp two cores).

Per fleet size, after one warm-up deployment, ``--repeat`` deployments of a revision
with no files and no hooks (all seven events run, none has anything to do). The agents
name the hooks as no-ops with their results (``ShipyardNoopEvents``), so the server
completes BeforeInstall, AfterInstall, ApplicationStart and ValidateService itself and
each agent sends four requests: the poll that brings ApplicationStop, and the results
of ApplicationStop, DownloadBundle and Install.

  wall        CreateDeployment sent .. GetDeployment first reports Succeeded (client
              side; polled every 5 ms up to 10 hosts, 20 ms for more, because every
              GetDeployment costs server CPU too, on a kept-alive connection rather
              than through boto3: harness.StatusWatch);
  server      the server's own createTime .. completeTime;
  per h-ev    median wall / (hosts x 7): the overhead per host-event (nothing runs,
              so all of the wall time is overhead);
  srv CPU     server CPU time per host-event (utime + stime over the deployment),
              the mean over the runs;
  agent CPU   the agents' CPU time per host-event, the mean over the runs.

Targets (2 cores): 1 host under 0.3 s, 100 hosts under 3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import (
    SEVEN_EVENTS,
    Admin,
    AgentFleet,
    ServerProcess,
    database_for,
    noop_bundle,
)
from profiling import py_spy

TARGETS = {1: 0.3, 100: 3.0}


def measure(hosts: int, repeat: int, database: str, work: Path, profile: Path | None) -> list[str]:
    server = ServerProcess(work / "server", database=database)
    fleet: AgentFleet | None = None
    try:
        admin = Admin(server)
        fleet = AgentFleet(admin, work / "hosts", "fleet")
        startup = fleet.start(hosts)
        admin.group("bench", "fleet", "fleet")
        revision = admin.upload("bench", "noop.zip", noop_bundle())
        interval = 0.005 if hosts <= 10 else 0.02
        admin.deploy("bench", "fleet", revision, poll_interval=interval)  # warm-up
        runs = []
        with py_spy(server.pid, Path(f"{profile}.{hosts}.txt") if profile else None):
            for _ in range(repeat):
                agents_before = fleet.cpu()
                result = admin.deploy("bench", "fleet", revision, poll_interval=interval)
                runs.append((result, fleet.cpu() - agents_before))
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()
    walls = [r.wall for r, _ in runs]
    host_events = hosts * SEVEN_EVENTS
    wall = statistics.median(walls)
    # Means, not medians: /proc counts CPU in 10 ms ticks, so one small deployment's
    # share is 0, 1 or 2 ticks and a median of those says nothing finer than a tick.
    server_cpu = sum(r.server_cpu for r, _ in runs) / len(runs)
    agent_cpu = sum(a for _, a in runs) / len(runs)
    target = TARGETS.get(hosts)
    verdict = (
        "" if target is None else f"  target < {target:g} s: {'met' if wall < target else 'MISSED'}"
    )
    return [
        f"{hosts:>5} {wall:>8.3f}s {min(walls):>8.3f}s "
        f"{statistics.median(r.server_seconds for r, _ in runs):>8.3f}s "
        f"{wall / host_events * 1000:>8.2f} ms {server_cpu / host_events * 1000:>8.2f} ms "
        f"{agent_cpu / host_events * 1000:>8.2f} ms{verdict}",
        f"      (agents started and long-polling in {startup:.1f} s)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,10,100")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument(
        "--profile", type=Path, help="record the server with py-spy (collapsed stacks)"
    )
    args = parser.parse_args()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine: {cores} cores, python {sys.version.split()[0]}, database {args.database}; "
        f"no-op seven-event deployments, AllAtOnce, {args.repeat} runs after a warm-up"
    )
    print(
        f"{'hosts':>5} {'wall med':>9} {'wall min':>9} {'server':>9} {'per h-ev':>11} "
        f"{'srv CPU':>11} {'agent CPU':>11}   (per h-ev: per host-event)"
    )
    for hosts in (int(n) for n in args.hosts.split(",")):
        with (
            tempfile.TemporaryDirectory(prefix="shipyard-fleet-") as tmp,
            database_for(args.database) as url,
        ):
            for line in measure(hosts, args.repeat, url, Path(tmp), args.profile):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
