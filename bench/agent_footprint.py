"""Agent footprint: one real agent's resident memory, idle and over 100 consecutive
deployments.

Run: .venv/bin/python bench/agent_footprint.py [--deployments 100] [--every 10]

One agent process (``python -m shipyard.agent``) against a server in its own process.
Each deployment is a real one: a small zip bundle (appspec, a few files, five hook
scripts that ``exit 0``) downloaded, unpacked, installed and its scripts run, so every
part of the agent is exercised. The agent keeps its default five revisions on disk.

Prints the agent's RSS (VmRSS) when idle after start, every ``--every`` deployments,
and idle again afterwards, plus its peak (VmHWM). Targets: under 25 MiB, and no growth
(the RSS after the last deployment is compared with the RSS halfway through).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness import HOOKS, Admin, AgentFleet, ServerProcess, status_kib, zip_bundle

TARGET_MIB = 25.0
GROWTH_TOLERANCE_MIB = 0.5  # allocator noise, not a leak


def hooked_bundle(dest: Path) -> bytes:
    """Ten small files installed to ``dest`` and one ``exit 0`` script for each hook."""
    files: dict[str, bytes | str] = {f"app/file-{i}.txt": f"content {i}\n" * 200 for i in range(10)}
    files["scripts/ok.sh"] = "#!/bin/sh\nexit 0\n"
    appspec = (
        f"version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {dest}\nhooks:\n"
        + "".join(f"  {h}:\n    - location: scripts/ok.sh\n" for h in HOOKS)
    )
    return zip_bundle(files, appspec)


def mib(pid: int, key: str = "VmRSS") -> float:
    return status_kib(pid, key) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-footprint-") as tmp:
        work = Path(tmp)
        server = ServerProcess(work / "server")
        fleet: AgentFleet | None = None
        try:
            admin = Admin(server)
            fleet = AgentFleet(admin, work / "hosts", "footprint")
            fleet.start(1)
            pid = fleet.pids()[0]
            bundle = hooked_bundle(work / "installed")
            admin.group("footprint", "one", "footprint")
            revision = admin.upload("bench", "hooked.zip", bundle)
            time.sleep(args.idle_seconds)
            idle = mib(pid)
            print(f"agent RSS idle after start: {idle:.1f} MiB")
            print(f"{'deployments':>11} {'RSS':>9} {'wall med':>9}")
            samples: list[tuple[int, float]] = []
            walls: list[float] = []
            for number in range(1, args.deployments + 1):
                deployment = admin.deploy("footprint", "one", revision, poll_interval=0.005)
                walls.append(deployment.wall)
                if number % args.every == 0 or number == 1:
                    rss = mib(pid)
                    samples.append((number, rss))
                    walls.sort()
                    print(f"{number:>11} {rss:>7.1f} MiB {walls[len(walls) // 2]:>8.3f}s")
                    walls = []
            time.sleep(args.idle_seconds)
            after = mib(pid)
            peak = mib(pid, "VmHWM")
        finally:
            if fleet is not None:
                fleet.stop()
            server.stop()
    # A leak grows with every deployment; caches and the allocator settle early. So the
    # second half of the run is what tells (a 300-deployment run plateaus after ~100).
    half, baseline = next((n, rss) for n, rss in samples if n >= args.deployments // 2)
    growth = samples[-1][1] - baseline
    print(
        f"agent RSS idle after {args.deployments} deployments: {after:.1f} MiB; peak {peak:.1f} MiB"
    )
    print(
        f"under {TARGET_MIB:g} MiB: idle {'met' if idle < TARGET_MIB else 'MISSED'}, "
        f"after deployments {'met' if after < TARGET_MIB else 'MISSED'}, "
        f"peak {'met' if peak < TARGET_MIB else 'MISSED'}; "
        f"growth from deployment {half} to {samples[-1][0]}: {growth:+.2f} MiB "
        f"({'none' if growth <= GROWTH_TOLERANCE_MIB else 'GROWING'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
