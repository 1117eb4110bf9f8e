"""Scale of the control plane: thousands of simulated agents against one server.

Run: .venv/bin/python bench/control_plane.py [--database sqlite,postgres]
         [--agents 5000] [--deploy 1000] [--curve 1,10,100,300,1000]
         [--poll-seconds 60] [--idle-seconds 20] [--workers 1]

The server runs in its own process (``python -m shipyard server``), so its CPU time
(utime + stime) and peak resident memory (VmHWM) come from /proc. The load generator
is one or a few asyncio processes (``--workers``) playing ``--agents`` agents over the
real agent protocol: each holds a keep-alive connection, long-polls, fetches the
deployment specification (once per deployment, and again for DownloadBundle, as the
real agent does), acknowledges, and completes each command at once with error_code 0
(no scripts run). Instances are registered and their keys issued through the API.

Phases, per database:
  idle     all agents long-polling (server poll hold ``--poll-seconds``): server CPU
           over ``--idle-seconds``, as a fraction of one core (target: under 0.5);
  deploy   an AllAtOnce no-op deployment to ``--deploy`` of them: wall time, server CPU
           per host-event, raw and net of the idle rate (target: under 1 ms);
  curve    AllAtOnce deployments to 1 .. 1,000 of them, same figures per point
           (the other agents keep long-polling meanwhile);
  memory   the server's peak RSS over the whole run.

Every loop is bounded: workers stop when their stdin closes or after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    AGENT_PREFIX,
    API_PREFIX,
    SEVEN_EVENTS,
    Admin,
    HttpError,
    JsonConnection,
    ServerProcess,
    cpu_seconds,
    database_for,
    noop_bundle,
    open_sockets,
    py_spy,
    raise_fd_limit,
)

from shipyard import sigv4

CONNECT_BATCH = 100  # agents that connect at once; then a short pause
CONNECT_PAUSE = 0.05
REGISTER_CONCURRENCY = 8
NOOP_ACK = {"Format": "JSON", "Payload": '{"IsCommandNoop":false}'}
SUCCESS = {
    "Format": "JSON",
    "Payload": json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded", "log": ""}),
}


# ---- the simulated agents (worker processes) ---------------------------------------------


@dataclass
class AgentStats:
    polls: int = 0
    commands: int = 0
    specs: int = 0
    errors: int = 0
    started: int = 0  # agents whose first poll has gone out
    last_error: str = ""


class SimulatedAgent:
    """One instance's agent over the real protocol, completing every command at once."""

    def __init__(self, conn: JsonConnection, host_identifier: str, stats: AgentStats) -> None:
        self.conn = conn
        self.host_identifier = host_identifier
        self.stats = stats
        self.specs_seen: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            try:
                poll = self.conn.call("PollHostCommand", {"HostIdentifier": self.host_identifier})
                task = asyncio.ensure_future(poll)
                if first:
                    first = False
                    await asyncio.sleep(0)  # let the request go out before counting it
                    self.stats.started += 1
                reply = await task
                self.stats.polls += 1
                command = reply.get("HostCommand")
                if command:
                    await self.handle(command)
            except (HttpError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(1.0)

    async def handle(self, command: dict[str, Any]) -> None:
        execution = command["DeploymentExecutionId"]
        if execution not in self.specs_seen or command["CommandName"] == "DownloadBundle":
            await self.conn.call(
                "GetDeploymentSpecification",
                {"DeploymentExecutionId": execution, "HostIdentifier": self.host_identifier},
            )
            self.specs_seen.add(execution)
            self.stats.specs += 1
        command_id = command["HostCommandIdentifier"]
        ack = await self.conn.call(
            "PutHostCommandAcknowledgement",
            {"HostCommandIdentifier": command_id, "Diagnostics": NOOP_ACK},
        )
        if ack.get("CommandStatus") in ("Succeeded", "Failed"):
            return  # the server settled it already: not to be run
        await self.conn.call(
            "PutHostCommandComplete",
            {"HostCommandIdentifier": command_id, "CommandStatus": "Succeeded", "Diagnostics": SUCCESS},
        )
        self.stats.commands += 1


async def run_worker(spec: dict[str, Any]) -> AgentStats:
    """Play the agents in ``spec`` until stdin closes or ``max_seconds`` pass."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    loop.call_later(spec["max_seconds"], stop.set)
    stats = AgentStats()
    agents = [
        SimulatedAgent(
            JsonConnection(
                spec["host"],
                spec["port"],
                sigv4.Credentials(key_id, secret),
                "codedeploy-commands",
                AGENT_PREFIX,
            ),
            host_identifier,
            stats,
        )
        for key_id, secret, host_identifier in spec["agents"]
    ]
    tasks = []
    for start in range(0, len(agents), CONNECT_BATCH):
        tasks += [loop.create_task(a.run(stop)) for a in agents[start : start + CONNECT_BATCH]]
        await asyncio.sleep(CONNECT_PAUSE)
    while stats.started < len(agents) and not stop.is_set():
        await asyncio.sleep(0.05)
    print(json.dumps({"ready": stats.started}), flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(a.conn.close() for a in agents), return_exceptions=True)
    return stats


def worker_main(spec_path: Path) -> int:
    raise_fd_limit()
    spec = json.loads(spec_path.read_text())
    stats = asyncio.run(run_worker(spec))
    print(json.dumps({"done": stats.__dict__}), flush=True)
    return 0


# ---- the orchestrator ------------------------------------------------------------------


async def _register_all(server: ServerProcess, admin: Admin, names: list[str]) -> list[list[str]]:
    """Register every instance and issue its keys, a few calls at a time."""
    conns = [
        JsonConnection("127.0.0.1", server.port, admin.creds, "codedeploy", API_PREFIX)
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


@dataclass
class Workers:
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, specs: list[Path]) -> None:
        for path in specs:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, "worker", str(path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )

    def wait_ready(self) -> int:
        ready = 0
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("a load generator worker exited before its agents started")
            ready += int(json.loads(line)["ready"])
        return ready

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes if p.poll() is None)

    def stop(self) -> dict[str, Any]:
        """Close their stdin (they stop by themselves); collect their counters."""
        totals: dict[str, Any] = {}
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
                process.stdin = None
        for process in self.processes:
            try:
                out, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate()
            for line in out.splitlines():
                done = json.loads(line).get("done")
                for key, value in (done or {}).items():
                    if isinstance(value, int):
                        totals[key] = totals.get(key, 0) + value
                    elif value:
                        totals[key] = value
        return totals


@dataclass
class Point:
    hosts: int
    wall: float
    server_seconds: float
    cpu: float
    idle_rate: float

    @property
    def host_events(self) -> int:
        return self.hosts * SEVEN_EVENTS

    def line(self) -> str:
        net = max(0.0, self.cpu - self.idle_rate * self.wall)
        return (
            f"{self.hosts:>6} {self.wall:>8.2f}s {self.server_seconds:>8.2f}s "
            f"{self.cpu:>8.2f}s {self.cpu / self.host_events * 1000:>9.2f} ms "
            f"{net / self.host_events * 1000:>9.2f} ms"
        )


POINT_HEADER = (
    f"{'hosts':>6} {'wall':>9} {'server':>9} {'srv CPU':>9} {'CPU/h-ev':>12} {'net/h-ev':>12}"
)


def _poll_interval(hosts: int) -> float:
    """GetDeployment polling: often for small fleets, gently for large (it costs CPU)."""
    return 0.005 if hosts <= 10 else 0.02 if hosts <= 100 else 0.1


def run_database(kind: str, args: argparse.Namespace) -> None:
    curve = [int(n) for n in args.curve.split(",") if n]
    sizes = sorted({args.deploy, *curve})
    if sizes[-1] > args.agents:
        raise SystemExit(f"--agents {args.agents} is fewer than the largest deployment")
    print(f"\n=== {kind}: {args.agents} simulated agents, poll hold {args.poll_seconds:g} s ===")
    with tempfile.TemporaryDirectory(prefix="shipyard-scale-") as tmp, database_for(kind) as url:
        work = Path(tmp)
        server = ServerProcess(work / "server", database=url, poll_seconds=args.poll_seconds)
        workers = Workers()
        try:
            admin = Admin(server)
            names = [f"sim-{i:05d}" for i in range(args.agents)]
            started = time.monotonic()
            agents = asyncio.run(_register_all(server, admin, names))
            for size in sizes:
                admin.tag(names[:size], f"first-{size}")
                admin.group("scale", f"first-{size}", f"first-{size}")
            revision = admin.upload("bench", "noop.zip", noop_bundle())
            print(f"setup: registered {len(names)} instances in {time.monotonic() - started:.1f} s")

            shares = [agents[i :: args.workers] for i in range(args.workers)]
            specs = []
            for index, share in enumerate(shares):
                path = work / f"worker-{index}.json"
                path.write_text(
                    json.dumps(
                        {
                            "host": "127.0.0.1",
                            "port": server.port,
                            "agents": share,
                            "max_seconds": args.max_seconds,
                        }
                    )
                )
                specs.append(path)
            started = time.monotonic()
            workers.start(specs)
            ready = workers.wait_ready()
            _wait_for_sockets(server, args.agents)
            print(
                f"agents: {ready} long-polling after {time.monotonic() - started:.1f} s; "
                f"server holds {open_sockets(server.pid)} sockets"
            )
            time.sleep(args.settle_seconds)

            with py_spy(server.pid, _profile_path(args, "idle", kind)):
                cpu0, gen0, t0 = server.cpu(), workers.cpu(), time.monotonic()
                time.sleep(args.idle_seconds)
                span = time.monotonic() - t0
            idle_rate = (server.cpu() - cpu0) / span
            print(
                f"idle: server {idle_rate:.3f} of a core with {args.agents} agents polling "
                f"(target < 0.5; load generator {(workers.cpu() - gen0) / span:.3f}); "
                f"server RSS {server.rss_mib():.0f} MiB"
            )

            with py_spy(server.pid, _profile_path(args, "deploy", kind)):
                result = admin.deploy(
                    "scale",
                    f"first-{args.deploy}",
                    revision,
                    poll_interval=_poll_interval(args.deploy),
                )
            point = Point(args.deploy, result.wall, result.server_seconds, result.server_cpu, idle_rate)
            print(f"deploy: AllAtOnce to {args.deploy} of them")
            print(POINT_HEADER)
            print(point.line())

            print("curve: AllAtOnce, no-op, the rest idle meanwhile")
            print(POINT_HEADER)
            for size in curve:
                result = admin.deploy(
                    "scale", f"first-{size}", revision, poll_interval=_poll_interval(size)
                )
                print(Point(size, result.wall, result.server_seconds, result.server_cpu, idle_rate).line())
            print(f"memory: server peak RSS {server.peak_mib():.0f} MiB, now {server.rss_mib():.0f} MiB")
        finally:
            try:
                totals = workers.stop()
            finally:
                server.stop()
        print(
            f"load generator: {totals.get('polls', 0)} polls, {totals.get('commands', 0)} commands, "
            f"{totals.get('specs', 0)} specifications, {totals.get('errors', 0)} errors"
            + (f" (last: {totals['last_error']})" if totals.get("last_error") else "")
        )


def _profile_path(args: argparse.Namespace, phase: str, kind: str) -> Path | None:
    return Path(f"{args.profile}.{phase}.{kind}.txt") if args.profile else None


def _wait_for_sockets(server: ServerProcess, count: int, timeout: float = 120.0) -> None:
    """Until the server holds a socket per agent (their first polls have arrived)."""
    deadline = time.monotonic() + timeout
    while open_sockets(server.pid) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the server holds {open_sockets(server.pid)} sockets, expected {count}"
            )
        time.sleep(0.2)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        return worker_main(Path(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--deploy", type=int, default=1000)
    parser.add_argument("--curve", default="1,10,100,300,1000")
    parser.add_argument("--poll-seconds", type=float, default=60.0, help="server poll hold")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--profile",
        type=Path,
        help="record the server with py-spy during the deployment (collapsed stacks)",
    )
    parser.add_argument(
        "--max-seconds", type=float, default=1800.0, help="hard stop for the load generator"
    )
    args = parser.parse_args()
    random.seed(1)
    print(f"fd limit: {raise_fd_limit()}")
    for kind in args.database.split(","):
        run_database(kind.strip(), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
