"""The load generator of ``control_plane.py``: thousands of simulated agents in one
asyncio process, speaking the real agent protocol to a Shipyard server.

Each simulated agent holds one keep-alive connection and loops as the real agent
does: PollHostCommand (long poll, asking for the specification along with a command,
and for the command acknowledged); GetDeploymentSpecification only when it did not come
along, PutHostCommandAcknowledgement only when the command did not come acknowledged,
then at once PutHostCommandComplete with error_code 0 (no scripts run) and
``ShipyardNextCommand``; a command handed back with the result runs next, without a
poll or an acknowledgement. Errors are counted and retried after a second.

As the real agent does for a revision without hooks, each result names every hook
event as a no-op (``ShipyardNoopEvents``), so the server completes those itself and
hands over only ApplicationStop (with the poll), DownloadBundle and Install; with the
spec's ``name_noops`` false, every event goes to the agent, as for a revision with a
script on every hook.

A worker process is started with a JSON spec file (``python bench/sim_agents.py
SPEC``), prints ``{"ready": n}`` once every agent has sent its first poll, and stops
when its stdin closes or after the spec's ``max_seconds``, printing its counters as
``{"done": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import cpu_seconds, raise_fd_limit
from jsonwire import AGENT_PREFIX, HttpError, JsonConnection

from shipyard import sigv4

CONNECT_BATCH = 100  # agents that connect at once, before a short pause
CONNECT_PAUSE = 0.05
ERROR_PAUSE = 1.0
RESULT_TRIES = 60  # a result is sent again for about a minute, a second apart
UNAVAILABLE = re.compile(r"HTTP (502|503|504)\b")
NOOP_ACK = {"Format": "JSON", "Payload": '{"IsCommandNoop":false}'}
# Every hook event: the revision (and the one before it) has no hooks at all.
HOOK_EVENTS = sorted(
    {"ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"}
    | {"BeforeBlockTraffic", "AfterBlockTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"}
)
SUCCESS = {
    "Format": "JSON",
    "Payload": json.dumps({"error_code": 0, "script_name": "", "message": "Succeeded", "log": ""}),
}


@dataclass
class AgentStats:
    polls: int = 0
    commands: int = 0
    specs: int = 0
    errors: int = 0
    started: int = 0  # agents whose first poll has gone out
    last_error: str = ""


class SimulatedAgent:
    """One instance's agent, completing every command at once."""

    def __init__(
        self, conn: JsonConnection, host_identifier: str, stats: AgentStats, name_noops: bool
    ) -> None:
        self.conn = conn
        self.host_identifier = host_identifier
        self.stats = stats
        self.name_noops = name_noops
        self.specs_seen: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            try:
                poll = asyncio.ensure_future(
                    self.conn.call(
                        "PollHostCommand",
                        {
                            "HostIdentifier": self.host_identifier,
                            "ShipyardSpecification": True,
                            "ShipyardAcknowledge": True,
                        },
                    )
                )
                if first:
                    first = False
                    await asyncio.sleep(0)  # let the request start before counting it
                    self.stats.started += 1
                reply = await poll
                self.stats.polls += 1
                command = reply.get("HostCommand")
                if command:
                    await self.handle(command)
            except (HttpError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(ERROR_PAUSE)

    async def call_until_answered(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        """An acknowledgement or a result, sent again while the answer says "not now"
        (a server behind a load balancer dying, its database away), as the real agent
        does: a lost result would leave the host's event running."""
        for attempt in range(RESULT_TRIES):
            try:
                return await self.conn.call(op, body)
            except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
                unavailable = not isinstance(exc, HttpError) or UNAVAILABLE.search(str(exc))
                if attempt == RESULT_TRIES - 1 or not unavailable:
                    raise
                self.stats.errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                await asyncio.sleep(ERROR_PAUSE)
        raise AssertionError("unreachable")

    async def handle(self, command: dict[str, Any] | None) -> None:
        """Run ``command`` and each next one the server hands back with a result."""
        while command:
            command = await self.handle_one(command)

    async def handle_one(self, command: dict[str, Any]) -> dict[str, Any] | None:
        execution = command["DeploymentExecutionId"]
        if command.get("ShipyardDeploymentSpecification"):
            self.specs_seen.add(execution)  # sent along with the command
        if execution not in self.specs_seen:
            await self.conn.call(
                "GetDeploymentSpecification",
                {
                    "DeploymentExecutionId": execution,
                    "HostIdentifier": self.host_identifier,
                    "ShipyardSpecification": True,  # as Shipyard's agent asks: plain JSON
                },
            )
            self.specs_seen.add(execution)
            self.stats.specs += 1
        command_id = command["HostCommandIdentifier"]
        if not command.get("ShipyardAcknowledged"):
            ack = await self.call_until_answered(
                "PutHostCommandAcknowledgement",
                {"HostCommandIdentifier": command_id, "Diagnostics": NOOP_ACK},
            )
            if ack.get("CommandStatus") in ("Succeeded", "Failed"):
                return None  # the server settled it already: not to be run
        reply = await self.call_until_answered(
            "PutHostCommandComplete",
            {
                "HostCommandIdentifier": command_id,
                "CommandStatus": "Succeeded",
                "Diagnostics": SUCCESS,
                "ShipyardNextCommand": True,
                **({"ShipyardNoopEvents": HOOK_EVENTS} if self.name_noops else {}),
            },
        )
        self.stats.commands += 1
        handed: dict[str, Any] | None = reply.get("ShipyardNextCommand")
        return handed


async def run_agents(spec: dict[str, Any]) -> AgentStats:
    """Play the agents in ``spec`` until stdin closes or ``max_seconds`` pass."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
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
            spec["name_noops"],
        )
        for key_id, secret, host_identifier in spec["agents"]
    ]
    tasks: list[asyncio.Task[None]] = []
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


@dataclass
class LoadGenerator:
    """The worker processes, seen from the orchestrator."""

    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(
        self,
        work: Path,
        host: str,
        port: int,
        agents: list[list[str]],
        workers: int,
        max_seconds: float,
        name_noops: bool,
    ) -> int:
        """Split ``agents`` (key id, secret, host identifier) over ``workers`` processes;
        return once every agent has sent its first poll (how many did)."""
        for index in range(workers):
            spec = {
                "host": host,
                "port": port,
                "agents": agents[index::workers],
                "max_seconds": max_seconds,
                "name_noops": name_noops,
            }
            path = work / f"sim-agents-{index}.json"
            path.write_text(json.dumps(spec))
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, __file__, str(path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
        ready = 0
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("a load generator process exited before its agents started")
            ready += int(json.loads(line)["ready"])
        return ready

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes if p.poll() is None)

    def stop(self) -> dict[str, Any]:
        """Close their stdin (they stop by themselves); add up their counters."""
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
                for key, value in (json.loads(line).get("done") or {}).items():
                    if isinstance(value, int):
                        totals[key] = totals.get(key, 0) + value
                    elif value:
                        totals[key] = value
        return totals


def main() -> int:
    raise_fd_limit()  # a socket per agent
    spec = json.loads(Path(sys.argv[1]).read_text())
    stats = asyncio.run(run_agents(spec))
    print(json.dumps({"done": asdict(stats)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
