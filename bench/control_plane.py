"""Scale of the control plane, and its cost curve: thousands of simulated agents
against one server, on SQLite and on PostgreSQL.

Run: .venv/bin/python bench/control_plane.py [--database sqlite,postgres]
         [--agents 10000] [--deploy 1000] [--curve 100,1000,10000]
         [--poll-seconds 50] [--idle-seconds 60] [--workers 1] [--profile PREFIX]
         [--every-event-reported]

The server runs in its own process (``python -m shipyard server``, with
``SHIPYARD_POLL_SECONDS`` as its poll hold and its open-file limit raised), so its CPU
time (utime + stime) and peak resident memory (VmHWM) come from /proc. Instances are
registered and their keys issued through the API. The load generator
(``sim_agents.py``, ``--workers`` asyncio processes) plays ``--agents`` agents over
the real agent protocol, completing every command at once (no scripts run). Like the
real agent with this revision (no hooks), they name every hook event as a no-op, so the
server completes four of the seven events itself; ``--every-event-reported`` sends
all seven to the agents, as for a revision with a script on every hook. Per
host-event figures divide by seven events either way.

Phases, per database:
  idle    every agent long-polling: server and database CPU over ``--idle-seconds`` as
          a share of one core (target: under 0.5 with 10,000 agents);
  curve   AllAtOnce no-op deployments to each size in ``--curve`` (and ``--deploy``),
          smallest first: how wall time and server CPU grow from 100 to 10,000 hosts;
  deploy  the point for ``--deploy`` hosts (1,000) against issue 17's targets: server
          CPU per host-event, the database's counted, under 0.5 ms on SQLite and 1.5 ms
          on PostgreSQL; under 5 s on SQLite and 10 s on PostgreSQL;
  memory  the server's peak RSS over the whole run.

Last, one table puts the databases side by side against those targets.

"net" CPU per host-event subtracts what the agents not in the deployment cost while
it ran (the idle rate, scaled to their share); "+PG" is what the PostgreSQL backends
serving the server spent besides, per host-event. The other agents keep long-polling
throughout. ``--profile PREFIX`` records the server with py-spy during the idle and
deploy phases (read them with ``bench/profiling.py``).

Every loop is bounded: the load generator stops when its stdin closes or after
``--max-seconds``; servers and workers are stopped on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import SEVEN_EVENTS, Admin, ServerProcess, database_for, noop_bundle, open_sockets
from jsonwire import API_PREFIX, JsonConnection
from profiling import py_spy
from sim_agents import LoadGenerator

REGISTER_CONCURRENCY = 8
IDLE_TARGET_CORES = 0.5  # server and database together
# Issue 17's targets per database: server CPU per host-event (with PostgreSQL's own
# CPU counted) and the wall time of the 1,000-host deployment.
CPU_TARGET_MS = {"sqlite": 0.5, "postgres": 1.5}
DEPLOY_TARGET_SECONDS = {"sqlite": 5.0, "postgres": 10.0}
TARGET_DEPLOY_HOSTS = 1000


@dataclass
class Point:
    """One deployment's figures."""

    hosts: int
    wall: float
    server_seconds: float
    cpu: float
    others_idle_cpu: float  # what the agents outside the deployment cost meanwhile
    database_cpu: float  # PostgreSQL backends' CPU (0 on SQLite)

    HEADER = (
        f"{'hosts':>6} {'wall':>9} {'server':>9} {'srv CPU':>9} "
        f"{'CPU/host-event':>15} {'net':>9} {'+PG':>9}"
    )

    def per_host_event_ms(self, cpu: float) -> float:
        return cpu / (self.hosts * SEVEN_EVENTS) * 1000

    @property
    def net_ms(self) -> float:
        return self.per_host_event_ms(max(0.0, self.cpu - self.others_idle_cpu))

    @property
    def with_database_ms(self) -> float:
        """Net server CPU plus the database's own, per host-event."""
        return self.net_ms + self.per_host_event_ms(self.database_cpu)

    def line(self) -> str:
        return (
            f"{self.hosts:>6} {self.wall:>8.2f}s {self.server_seconds:>8.2f}s "
            f"{self.cpu:>8.2f}s {self.per_host_event_ms(self.cpu):>12.2f} ms "
            f"{self.net_ms:>6.2f} ms {self.per_host_event_ms(self.database_cpu):>6.2f} ms"
        )


def _poll_interval(hosts: int) -> float:
    """GetDeployment polling: often for small fleets, gently for large (it costs CPU)."""
    return 0.005 if hosts <= 10 else 0.02 if hosts <= 100 else 0.1


async def register_all(admin: Admin, names: list[str]) -> list[list[str]]:
    """Register every instance and issue its keys, a few calls at a time; returns
    (access key id, secret, host identifier) per instance."""
    conns = [
        JsonConnection("127.0.0.1", admin.server.port, admin.creds, "codedeploy", API_PREFIX)
        for _ in range(REGISTER_CONCURRENCY)
    ]
    found: dict[str, list[str]] = {}
    queue = list(reversed(names))

    async def work(conn: JsonConnection) -> None:
        while queue:
            name = queue.pop()
            arn = f"arn:aws:iam::000000000000:user/{name}"
            await conn.call("RegisterOnPremisesInstance", {"instanceName": name, "iamUserArn": arn})
            creds = await conn.call("ShipyardIssueInstanceCredentials", {"instanceName": name})
            found[name] = [creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]]

    try:
        await asyncio.gather(*(work(c) for c in conns))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    return [found[n] for n in names]


class Scenario:
    """One server, its registered instances, one deployment group per fleet size."""

    def __init__(self, args: argparse.Namespace, kind: str, server: ServerProcess) -> None:
        self.args = args
        self.kind = kind
        self.server = server
        self.admin = Admin(server)
        self.load = LoadGenerator()
        self.idle_rate = 0.0
        self.idle_database_rate = 0.0
        self.revision: dict[str, Any] = {}

    def setup(self, sizes: list[int]) -> list[list[str]]:
        started = time.monotonic()
        names = [f"sim-{i:05d}" for i in range(self.args.agents)]
        agents = asyncio.run(register_all(self.admin, names))
        for size in sizes:
            self.admin.tag(names[:size], f"first-{size}")
            self.admin.group("scale", f"first-{size}", f"first-{size}")
        self.revision = self.admin.upload("bench", "noop.zip", noop_bundle())
        print(f"setup: {len(names)} instances registered in {time.monotonic() - started:.1f} s")
        return agents

    def start_agents(self, work: Path, agents: list[list[str]]) -> None:
        started = time.monotonic()
        args = self.args
        ready = self.load.start(
            work,
            "127.0.0.1",
            self.server.port,
            agents,
            args.workers,
            args.max_seconds,
            not args.every_event_reported,
        )
        # Under load a large fleet connects slowly (a batch of 100 at a time).
        deadline = time.monotonic() + max(120.0, len(agents) * 0.05)
        while open_sockets(self.server.pid) < len(agents):  # their first polls have arrived
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server holds only {open_sockets(self.server.pid)} sockets")
            time.sleep(0.2)
        print(
            f"agents: {ready} long-polling after {time.monotonic() - started:.1f} s "
            f"(server holds {open_sockets(self.server.pid)} sockets)"
        )
        time.sleep(args.settle_seconds)

    def idle(self) -> None:
        with py_spy(self.server.pid, self.profile_path("idle")):
            server0, load0, started = self.server.cpu(), self.load.cpu(), time.monotonic()
            db0 = self.server.database_cpu()
            time.sleep(self.args.idle_seconds)
            span = time.monotonic() - started
        self.idle_rate = (self.server.cpu() - server0) / span
        db1 = self.server.database_cpu()
        db_rate = sum(v - db0.get(pid, 0.0) for pid, v in db1.items()) / span
        self.idle_database_rate = db_rate
        total = self.idle_rate + db_rate
        verdict = "met" if total < IDLE_TARGET_CORES else "MISSED"
        print(
            f"idle: server uses {self.idle_rate:.3f} of a core with {self.args.agents} agents "
            f"long-polling"
            + (f", PostgreSQL backends {db_rate:.3f} more" if self.server.database else "")
            + f" (target < {IDLE_TARGET_CORES} together: {verdict})"
            + "; load generator "
            f"{(self.load.cpu() - load0) / span:.3f}; server RSS {self.server.rss_mib():.0f} MiB"
        )

    def deploy(self, hosts: int, profile: Path | None = None) -> Point:
        with py_spy(self.server.pid, profile):
            result = self.admin.deploy(
                "scale", f"first-{hosts}", self.revision, poll_interval=_poll_interval(hosts)
            )
        others = self.idle_rate * result.wall * (self.args.agents - hosts) / self.args.agents
        return Point(
            hosts,
            result.wall,
            result.server_seconds,
            result.server_cpu,
            others,
            result.database_cpu,
        )

    def profile_path(self, phase: str) -> Path | None:
        prefix = self.args.profile
        return Path(f"{prefix}.{phase}.{self.kind}.txt") if prefix else None


@dataclass
class Summary:
    """One database's figures, for the side-by-side table."""

    idle_cores: float = 0.0  # server and database
    points: dict[int, Point] = field(default_factory=dict)


def run_database(kind: str, args: argparse.Namespace) -> Summary:
    curve = [int(n) for n in args.curve.split(",") if n]
    sizes = sorted({args.deploy, *curve})
    if sizes[-1] > args.agents:
        raise SystemExit(f"--agents {args.agents} is fewer than the largest deployment")
    reporting = "every event" if args.every_event_reported else "hooks named as no-ops"
    print(
        f"\n=== {kind}: {args.agents} simulated agents, poll hold {args.poll_seconds:g} s, "
        f"agents report {reporting} ==="
    )
    with tempfile.TemporaryDirectory(prefix="shipyard-scale-") as tmp, database_for(kind) as url:
        work = Path(tmp)
        server = ServerProcess(
            work / "server",
            database=url,
            poll_seconds=args.poll_seconds,
            extra_env={
                "SHIPYARD_AGENT_TIMEOUT": str(args.agent_timeout),
                # One keep-alive connection per agent, plus the admin's: the default
                # cap (8,192) is below the 10,000 agents of issue 17.
                "SHIPYARD_MAX_CONNECTIONS": str(args.agents + 1000),
            },
        )
        scenario = Scenario(args, kind, server)
        summary = Summary()
        totals: dict[str, Any] = {}
        try:
            scenario.start_agents(work, scenario.setup(sizes))
            scenario.idle()
            summary.idle_cores = scenario.idle_rate + scenario.idle_database_rate
            print("curve: AllAtOnce no-op deployments, smallest first")
            print(Point.HEADER)
            headline: Point | None = None
            for size in sizes:
                profile = scenario.profile_path("deploy") if size == args.deploy else None
                point = scenario.deploy(size, profile)
                print(point.line(), flush=True)
                summary.points[size] = point
                if size == args.deploy:
                    headline = point
            assert headline is not None
            target = CPU_TARGET_MS[kind]
            verdict = "met" if headline.with_database_ms < target else "MISSED"
            print(
                f"deploy: AllAtOnce to {args.deploy}: {headline.wall:.1f} s, net server CPU "
                f"{headline.with_database_ms:.2f} ms per host-event with the database's "
                f"(target < {target:g} ms: {verdict})"
            )
            print(
                f"memory: server peak RSS {server.peak_mib():.0f} MiB, "
                f"now {server.rss_mib():.0f} MiB"
            )
        finally:
            try:
                totals = scenario.load.stop()
            finally:
                server.stop()
        last = f" (last: {totals['last_error']})" if totals.get("last_error") else ""
        print(
            f"load generator: {totals.get('polls', 0)} polls, {totals.get('commands', 0)} "
            f"commands, {totals.get('specs', 0)} specifications, {totals.get('errors', 0)} "
            f"errors{last}"
        )
    return summary


def _verdict(value: float, target: float) -> str:
    return f"{'met' if value < target else 'MISSED'} (< {target:g})"


def side_by_side(summaries: dict[str, Summary], args: argparse.Namespace) -> None:
    """Every database's figures against issue 17's targets, in one table."""
    kinds = list(summaries)
    width = 30
    print(f"\n=== side by side ({args.agents} simulated agents) ===")
    print(f"{'':<44}" + "".join(f"{k:>{width}}" for k in kinds))
    cells = [
        f"{s.idle_cores:.3f} core, " + _verdict(s.idle_cores, IDLE_TARGET_CORES)
        for s in summaries.values()
    ]
    print(f"{'idle, server + database':<44}" + "".join(f"{c:>{width}}" for c in cells))
    for size in sorted({n for s in summaries.values() for n in s.points}):
        walls, cpus = [], []
        for kind, summary in summaries.items():
            point = summary.points.get(size)
            if point is None:
                walls.append("-")
                cpus.append("-")
                continue
            wall = f"{point.wall:.2f} s"
            cpu = f"{point.with_database_ms:.2f} ms"
            if size == TARGET_DEPLOY_HOSTS:
                wall += ", " + _verdict(point.wall, DEPLOY_TARGET_SECONDS[kind])
                cpu += ", " + _verdict(point.with_database_ms, CPU_TARGET_MS[kind])
            walls.append(wall)
            cpus.append(cpu)
        print(f"{f'{size} hosts AllAtOnce: wall':<44}" + "".join(f"{c:>{width}}" for c in walls))
        print(
            f"{f'{size} hosts: CPU/host-event, server + database':<44}"
            + "".join(f"{c:>{width}}" for c in cpus)
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--deploy", type=int, default=1000)
    parser.add_argument("--curve", default="100,1000,10000")
    parser.add_argument("--poll-seconds", type=float, default=50.0, help="server poll hold")
    # Longer than one poll hold, so every idle agent polls again inside the window:
    # a shorter one can miss those polls, the whole of the idle cost.
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument(
        "--agent-timeout",
        type=float,
        default=600.0,
        help="server's silent-agent limit (default 600 s rather than 60: a server slowed "
        "down by the load must not fail hosts whose agents are merely waiting for it)",
    )
    parser.add_argument("--workers", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--every-event-reported",
        action="store_true",
        help="agents name no hook as a no-op, so every event goes to them (a revision with "
        "a script on every hook); by default they name them all, as the real agent does "
        "for the no-op revision, and report three events of seven",
    )
    parser.add_argument("--profile", help="py-spy recordings to PREFIX.{idle,deploy}.DB.txt")
    parser.add_argument(
        "--max-seconds", type=float, default=3600.0, help="hard stop for the load generator"
    )
    args = parser.parse_args()
    summaries = {
        kind.strip(): run_database(kind.strip(), args) for kind in args.database.split(",")
    }
    side_by_side(summaries, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
