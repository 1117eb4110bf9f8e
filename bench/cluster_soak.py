"""Soak: continuous deployments on a three-replica cluster while replicas are killed.

```sh
.venv/bin/python bench/cluster_soak.py [--minutes 30] [--hosts 200] [--groups 4]
    [--kill-every 45] [--seed 1] [--spare-first]
```

Bounded: it runs ``--minutes`` (default 30), then lets what is in flight finish (at
most 2 minutes) and stops everything it started. Everything is on loopback
(tests/e2e/cluster.py): a private PostgreSQL, moto's S3 server as the shared bundle
store, three replicas (real server processes) behind HAProxy, and ``--hosts`` simulated
agents (bench/sim_agents.py: the real agent protocol, each command completed at once)
polling through HAProxy. The hosts are split into ``--groups`` deployment groups; each
group always has a deployment running (AllAtOnce, the seven events on every host): a
new one is created as soon as the last ends.

About every ``--kill-every`` seconds (at random, seeded) one live replica is killed with
SIGKILL and started again 5 s later; the run never has fewer than two replicas up.
``--spare-first`` never kills replica 1, so that one process lives the whole run and
shows whether memory levels off (the kills then fall on replicas 2 and 3).

It prints, every minute and at the end: deployments done (by final status), lost (created
but unknown to the cluster afterwards, or never finished: must be 0), stuck (running
longer than 2 minutes: must be 0), lifecycle events dispatched twice to a host (host
command rows: must be 0), kills, API calls that failed on their way (502s while a
replica dies; boto3 retries them), resident memory of each replica over time (a
restarted replica starts again from its start-up size), and the database size per 1,000
deployments. With ``--spare-first`` the end adds replica 1's memory at each tenth of
the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from botocore.exceptions import BotoCoreError, ClientError
from harness import Admin
from sim_agents import LoadGenerator
from tests.e2e.cluster import Cluster, cluster
from tests.e2e.conftest import make_bundle

FINISHED = ("Succeeded", "Failed", "Stopped")
STUCK_SECONDS = 120.0
RESTART_AFTER_SECONDS = 5.0
DRAIN_SECONDS = 120.0
SETTINGS = {"POLL_SECONDS": "10", "LEASE_SECONDS": "3", "AGENT_TIMEOUT": "60"}


@dataclass
class FrontDoor:
    """What harness.Admin needs of a server: the URL and admin keys (HAProxy's, here)."""

    url: str
    keys: tuple[str, str]

    def admin_keys(self) -> tuple[str, str]:
        return self.keys


@dataclass
class Soak:
    running: Cluster
    admin: Admin
    groups: list[str]
    revision: dict[str, Any]
    rng: random.Random
    active: dict[str, tuple[str, float]] = field(default_factory=dict)  # group -> (id, since)
    created: list[str] = field(default_factory=list)
    finished: Counter[str] = field(default_factory=Counter)
    stuck: set[str] = field(default_factory=set)
    api_errors: int = 0
    kills: int = 0
    down: dict[int, float] = field(default_factory=dict)  # replica -> when killed
    memory: list[dict[str, Any]] = field(default_factory=list)
    last_chaos: float = 0.0
    spared: frozenset[int] = frozenset()

    def step(self, now: float, creating: bool) -> None:
        for group in self.groups:
            try:
                self._group(group, now, creating)
            except (ClientError, BotoCoreError) as exc:
                self.api_errors += 1
                if self.api_errors <= 5:
                    print(f"  api error ({group}): {exc}", flush=True)

    def _group(self, group: str, now: float, creating: bool) -> None:
        cd = self.admin.cd
        if group in self.active:
            deployment_id, since = self.active[group]
            info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in FINISHED:
                self.finished[info["status"]] += 1
                del self.active[group]
            elif now - since > STUCK_SECONDS:
                self.stuck.add(deployment_id)
            return
        if not creating:
            return
        try:
            deployment_id = cd.create_deployment(
                applicationName="soak", deploymentGroupName=group, revision=self.revision
            )["deploymentId"]
        except cd.exceptions.DeploymentLimitExceededException:
            # Created, but the answer was lost with a dying replica: follow that one.
            listed = cd.list_deployments(
                applicationName="soak",
                deploymentGroupName=group,
                includeOnlyStatuses=["Created", "Queued", "InProgress", "Baking", "Ready"],
            )["deployments"]
            if not listed:
                return
            deployment_id = listed[0]
        if deployment_id not in self.created:
            self.created.append(deployment_id)
        self.active[group] = (deployment_id, now)

    def chaos(self, now: float, kill_every: float) -> None:
        """Restart what has been down long enough; now and then kill a live replica."""
        for index, since in list(self.down.items()):
            if now - since >= RESTART_AFTER_SECONDS:
                self.running.restart(index)
                del self.down[index]
                print(f"  replica {index + 1} started again", flush=True)
        live = self.running.live()
        since, self.last_chaos = self.last_chaos or now, now
        candidates = [index for index in live if index not in self.spared]
        if len(live) >= 3 and candidates and self.rng.random() < (now - since) / kill_every:
            index = self.rng.choice(candidates)
            self.running.kill(index)
            self.down[index] = now
            self.kills += 1
            print(f"  killed replica {index + 1} (kill {self.kills})", flush=True)

    def sample_memory(self, elapsed: float) -> None:
        rss = {f"replica-{i + 1}": kib // 1024 for i, kib in self.running.memory().items()}
        self.memory.append({"minute": round(elapsed / 60, 1), "rss_mib": rss})

    def report(self, elapsed: float, agents: dict[str, Any] | None = None) -> dict[str, Any]:
        duplicates = self.running.query(
            "SELECT count(*) FROM (SELECT 1 FROM host_commands "
            "GROUP BY deployment_id, instance_name, command_name HAVING count(*) > 1) d"
        )[0][0]
        size = self.running.query("SELECT pg_database_size(current_database())")[0][0]
        known = {row[0] for row in self.running.query("SELECT id FROM deployments")}
        lost = [d for d in self.created if d not in known]
        done = sum(self.finished.values())
        report: dict[str, Any] = {
            "minutes": round(elapsed / 60, 1),
            "deployments_done": dict(self.finished),
            "created": len(self.created),
            "running": len(self.active),
            "lost": len(lost),
            "stuck": len(self.stuck),
            "events_dispatched_twice": duplicates,
            "kills": self.kills,
            "api_errors": self.api_errors,
            "database_mib": round(size / 2**20, 1),
            "database_mib_per_1000_deployments": round(size / 2**20 / max(done, 1) * 1000, 1),
            "memory": self.memory[-1] if self.memory else {},
        }
        if agents is not None:
            report["agents"] = agents
        return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=45.0, help="seconds, on average")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spare-first", action="store_true", help="never kill replica 1")
    args = parser.parse_args()
    # SIGTERM (timeout, Ctrl-C's sibling) unwinds like an error: the replicas, HAProxy,
    # PostgreSQL and the simulated agents are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="shipyard-soak-"))
    with cluster(work / "cluster", 3, SETTINGS) as running:
        front = running.front
        admin = Admin(FrontDoor(front.url, (front.access_key_id, front.secret_access_key)))
        per_group = args.hosts // args.groups
        groups = [f"g{n}" for n in range(1, args.groups + 1)]
        agents: list[list[str]] = []
        for n, group in enumerate(groups):
            names = [f"{group}-h{i}" for i in range(per_group)]
            agents += [list(admin.register(name)) for name in names]
            admin.tag(names, f"soak-{n}")
            admin.group("soak", group, f"soak-{n}")
        revision = running.upload(
            "soak.zip", make_bundle({"appspec.yml": "version: 0.0\nos: linux\n"})
        )
        load = LoadGenerator()
        port = int(front.url.rsplit(":", 1)[1])
        ready = load.start(work, "127.0.0.1", port, agents, 2, args.minutes * 60 + 600)
        print(f"{ready} simulated agents polling through HAProxy; soaking {args.minutes} min")
        soak = Soak(running, admin, groups, revision, random.Random(args.seed))
        if args.spare_first:
            soak.spared = frozenset({0})
        started = time.monotonic()
        next_report = next_memory = 0.0
        try:
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                soak.step(time.time(), creating=True)
                soak.chaos(time.monotonic(), args.kill_every)
                if elapsed >= next_memory:
                    soak.sample_memory(elapsed)
                    next_memory += 30
                if elapsed >= next_report:
                    print(json.dumps(soak.report(elapsed)), flush=True)
                    next_report += 60
                time.sleep(0.2)
            for index in list(soak.down):  # everyone back, then let the last ones end
                running.restart(index)
                del soak.down[index]
            drain_until = time.monotonic() + DRAIN_SECONDS
            while soak.active and time.monotonic() < drain_until:
                soak.step(time.time(), creating=False)
                time.sleep(0.5)
            soak.stuck |= {deployment_id for deployment_id, _ in soak.active.values()}
            soak.sample_memory(time.monotonic() - started)
        finally:
            totals = load.stop()
        final = soak.report(time.monotonic() - started, totals)
        final["memory_over_time"] = soak.memory
        if args.spare_first:
            final["replica_1_rss_mib_by_tenth"] = _tenths(soak.memory, "replica-1")
        print(json.dumps(final, indent=1))
        with contextlib.suppress(OSError):
            (work / "report.json").write_text(json.dumps(final, indent=1))
        return 0 if final["lost"] == 0 and final["stuck"] == 0 else 1


def _tenths(samples: list[dict[str, Any]], replica: str) -> list[int]:
    """One replica's RSS at each tenth of the run (its samples, evenly picked)."""
    values = [sample["rss_mib"][replica] for sample in samples if replica in sample["rss_mib"]]
    if not values:
        return []
    return [values[min(len(values) - 1, round(i * (len(values) - 1) / 10))] for i in range(11)]


if __name__ == "__main__":
    raise SystemExit(main())
