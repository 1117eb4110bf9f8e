"""The sweeper: time as an input. Every second it feeds Tick to each active
deployment (deadlines, bake times, traffic shift steps), AgentSilent for hosts whose
agent stopped polling, and now and then starts follow-on deployments for hosts that
joined a group (outdatedInstancesStrategy UPDATE).

With several replicas each deployment is swept by one of them, the holder of its lease
(``cluster.share``); the outdated-hosts look is one more piece of such work. Every
replica keeps ``last_seen`` fresh for the polls it holds, so whichever replica sweeps a
deployment sees which agents are alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from shipyard.cluster import polls
from shipyard.engine import outdated
from shipyard.engine.messages import AgentSilent, Tick
from shipyard.runner import snapshots
from shipyard.runner.after_commit import AfterCommit
from shipyard.store import deployments as store
from shipyard.store import groups as group_store
from shipyard.store import host_commands as commands

if TYPE_CHECKING:
    from shipyard.runner.core import Runner

log = logging.getLogger("shipyard.runner")

SWEEP_SECONDS = 1.0
OUTDATED_EVERY = 5  # sweeps between looks for hosts that joined a group


class Sweeper:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._task: asyncio.Task[None] | None = None
        # Since when agents could reach this server and it its database.
        self._started_at = 0.0
        self._sweeps = 0
        self._polls_refreshed = 0.0
        self._failing = False

    def start(self) -> None:
        self._started_at = self.runner.clock()
        self._task = asyncio.get_running_loop().create_task(self._forever())

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            with contextlib.suppress(Exception):  # the database may be gone already
                self.runner.share.leave()

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self.runner.agents.contacts.write()
                self.runner.agents.recheck_waiting()
                self._refresh_polls()
                self.sweep()
            except Exception:
                if not self._failing:
                    log.exception("sweep failed")
                self._failing = True
            else:
                self._failing = False

    def _refresh_polls(self) -> None:
        now = self.runner.clock()
        timeout = self.runner.config.agent_timeout
        if now - self._polls_refreshed < polls.refresh_every(timeout):
            return
        with self.runner.db.tx() as conn:
            polls.refresh_held_polls(conn, self.runner.agents.polling(), now, timeout)
        self._polls_refreshed = now

    def sweep(self) -> None:
        """Feed timer inputs to the active deployments this replica holds: a Tick for
        deadlines, and AgentSilent for hosts whose agent stopped polling."""
        if self._failing:
            # Agents could not reach the database while it was down: count from now.
            self._started_at = self.runner.clock()
        share = self.runner.share
        share.beat()
        with self.runner.db.tx() as conn:
            ids = store.active_ids(conn)
        self.runner.forget_finished(set(ids))
        mine = share.mine("deployment", ids)
        for deployment_id in ids:
            if deployment_id in mine:
                self.runner.apply(deployment_id, Tick())
                self._check_agents(deployment_id)
        self._sweeps += 1
        if self._sweeps % OUTDATED_EVERY == 0 and share.mine("task", ["outdated"]):
            self.update_outdated()

    def update_outdated(self) -> list[str]:
        """Start follow-on deployments for hosts that joined groups after their last
        success (outdatedInstancesStrategy UPDATE); returns the new deployments' ids."""
        runner = self.runner
        started: list[str] = []
        with runner.db.tx() as conn:
            groups = [
                g for g in group_store.all_deployment_groups(conn) if outdated.wants_update(g)
            ]
        for group in groups:
            after = AfterCommit()
            with runner.db.tx() as conn:
                snapshot = snapshots.for_outdated(conn, group)
                request = outdated.request(group, snapshot)
                if request is None or snapshot.root is None:
                    continue
                new = runner.launch_in(conn, request, after)
                root = store.load(conn, snapshot.root.state.deployment_id)
                if root is not None:
                    outdated.link(root, new)
                    store.save(conn, root)
                    store.save(conn, new)
                started.append(new.state.deployment_id)
            runner.after_commit(after)
        return started

    def _check_agents(self, deployment_id: str) -> None:
        runner = self.runner
        cached = runner.cached(deployment_id)
        if cached is None:
            return  # reloaded on its next step; checked on the next sweep
        runner.steps_for(cached[1]).resume(cached[1])
        state = cached[1].state
        running = [
            t.target_id
            for t in state.targets.values()
            if t.in_flight and (current := t.current()) and current.name not in state.server_events
        ]
        if not running:
            return
        now = runner.clock()
        timeout = runner.config.agent_timeout
        # A host counts from the later of its last poll and the deployment's start.
        since = max(now - timeout, 0.0)
        with runner.db.tx() as conn:
            silent = commands.silent_instances(conn, running, since)
        # Nobody could poll a server that was down: count from its own start too.
        started = max(state.start_time or state.create_time, self._started_at)
        for name, last_seen in silent.items():
            if runner.agents.is_polling(name):
                continue
            heard = max(last_seen or 0.0, started)
            if now - heard >= timeout:
                log.warning(
                    "agent of %s silent for %.0f s: its host fails in deployment %s",
                    name,
                    now - heard,
                    deployment_id,
                )
                runner.apply(deployment_id, AgentSilent(name, now - heard))
