"""Load, step, persist, act: the only engine module with I/O.

Every change to a deployment is one call to ``apply``: in one transaction it loads
the deployment (row-locked on PostgreSQL so replicas take turns), lets the pure
machine decide, writes what changed and queues host commands; after the commit it
wakes the agents that have new work. A sweeper feeds ``Tick`` inputs so deadlines
are noticed without anyone asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from shipyard import notify
from shipyard.config import ServerConfig
from shipyard.engine import launch, machine, rollback
from shipyard.engine.agent_side import AgentSide, BundleUrl
from shipyard.errors import ApiError
from shipyard.model import (
    TERMINAL_DEPLOYMENT_STATUSES,
    DeploymentStatus,
)
from shipyard.store import deployments as store
from shipyard.store import resources
from shipyard.store.db import Database

log = logging.getLogger("shipyard.runner")

SWEEP_SECONDS = 1.0


class Runner(AgentSide):
    """Load, step, persist, act; plus the agent-facing half inherited from AgentSide."""

    def __init__(
        self,
        config: ServerConfig,
        db: Database,
        clock: Callable[[], float],
        bundle_url: BundleUrl | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.bundle_url = bundle_url
        self._sweeper: asyncio.Task[None] | None = None
        # deployment id -> (row version, state) as this process last wrote it
        self._states: dict[str, tuple[int, store.StoredDeployment]] = {}
        super().__init__()

    # ---- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self.sweep()
            except Exception:
                log.exception("sweep failed")

    def sweep(self) -> None:
        """Feed timer inputs to every active deployment: a Tick for deadlines, and
        AgentSilent for hosts whose agent stopped polling."""
        with self.db.tx() as conn:
            ids = store.active_ids(conn)
        for deployment_id in ids:
            self.apply(deployment_id, machine.Tick())
            self._check_agents(deployment_id)

    def _check_agents(self, deployment_id: str) -> None:
        cached = self._states.get(deployment_id)
        if cached is None:
            return  # reloaded on its next step; checked on the next sweep
        state = cached[1].state
        running = [t.target_id for t in state.targets.values() if t.in_flight]
        if not running:
            return
        now = self.clock()
        # A host counts from the later of its last poll and the deployment's start.
        since = max(now - self.config.agent_timeout, 0.0)
        with self.db.tx() as conn:
            silent = store.silent_instances(conn, running, since)
        started = state.start_time or state.create_time
        for name, last_seen in silent.items():
            if name in self._polling:
                continue
            heard = max(last_seen or 0.0, started)
            if now - heard >= self.config.agent_timeout:
                self.apply(deployment_id, machine.AgentSilent(name, now - heard))

    # ---- the one way to change a deployment -------------------------------------------

    def create(self, request: launch.LaunchRequest) -> str:
        """Build, store and start a new deployment atomically; returns its id.

        Raises DeploymentLimitExceededException when the group already has an active
        deployment (checked in the same transaction that inserts the new one)."""
        woken: set[str] = set()
        with self.db.tx() as conn:
            group_name = request.group["deploymentGroupName"]
            active = store.active_for_group(conn, request.app_name, group_name)
            if active is not None:
                raise ApiError(
                    "DeploymentLimitExceededException",
                    f"The Deployment Group '{group_name}' already has an active "
                    f"Deployment '{active}'",
                )
            stored = self._launch(conn, request, woken)
        if stored.state.status not in TERMINAL_DEPLOYMENT_STATUSES:
            self._states[stored.state.deployment_id] = (2, stored)
        self._wake(woken)
        return stored.state.deployment_id

    def manual_rollback(self, app: str, group_name: str, *, emergency: bool) -> dict[str, Any]:
        """``shipyard rollback``: stop what runs and go back to the last good revision.

        Normally the active deployment is stopped with rollback requested, so the
        rollback starts once its hosts finish their current event. In an emergency the
        events in flight are abandoned and the rollback starts at once, on every host,
        skipping the failed revision's stop scripts."""
        with self.db.tx() as conn:
            group = resources.get_deployment_group(conn, app, group_name)
            if group is None:
                raise ApiError(
                    "DeploymentGroupDoesNotExistException",
                    f"No deployment group {group_name} in application {app}",
                )
            active = store.active_for_group(conn, app, group_name)
        if active is not None and not emergency:
            self.apply(active, machine.StopRequested(rollback=True))
            with self.db.tx() as conn:
                stopped = store.load(conn, active)
            started = ((stopped.info if stopped else {}).get("rollbackInfo") or {}).get(
                "rollbackDeploymentId"
            )
            result: dict[str, Any] = {"stoppedDeploymentId": active}
            if started:
                result["rollbackDeploymentId"] = started
            return result
        if active is not None:
            self.apply(active, machine.StopRequested(rollback=False, abandon=True))
        woken: set[str] = set()
        with self.db.tx() as conn:
            group = resources.get_deployment_group(conn, app, group_name)
            assert group is not None
            try:
                if active is not None and group.get("targetRevision"):
                    revision = dict(group["targetRevision"])
                else:
                    revision = rollback.manual_revision(conn, group)
            except rollback.RollbackError as exc:
                raise ApiError("RevisionDoesNotExistException", str(exc)) from None
            request = rollback.manual_request(conn, app, group, revision, emergency=emergency)
            running = store.active_for_group(conn, app, group_name)
            if running is not None:
                raise ApiError(
                    "DeploymentLimitExceededException",
                    f"The Deployment Group '{group_name}' already has an active "
                    f"Deployment '{running}'",
                )
            new = self._launch(conn, request, woken)
            result = {"rollbackDeploymentId": new.state.deployment_id}
            if active is not None:
                stopped = store.load(conn, active)
                if stopped is not None:
                    rollback.link(stopped, new, "Emergency rollback to the last good revision")
                    store.save(conn, stopped)
                    store.save(conn, new)
                result["stoppedDeploymentId"] = active
        self._wake(woken)
        return result

    def _launch(
        self, conn: Connection, request: launch.LaunchRequest, woken: set[str]
    ) -> store.StoredDeployment:
        now = self.clock()
        stored = launch.build(conn, request, now, self.config.event_timeout)
        store.insert(conn, stored.state, stored.info, stored.application_name, stored.group_name)
        launch.record_start(conn, stored, now)
        self._step(conn, stored, machine.Start(), woken)
        return stored

    def apply(self, deployment_id: str, event: machine.Input) -> DeploymentStatus | None:
        woken: set[str] = set()
        # The state this process wrote last is reused when the row's version shows
        # nobody else (another replica) has written since; otherwise it is re-read.
        cached = self._states.pop(deployment_id, None)
        with self.db.tx() as conn:
            version = store.lock_version(conn, deployment_id)
            if version is None:
                return None
            if cached is not None and cached[0] == version:
                stored = cached[1]
            else:
                loaded = store.load(conn, deployment_id)
                assert loaded is not None  # the row is locked
                stored = loaded
            if self._step(conn, stored, event, woken):
                version += 1
            status = stored.state.status
        if status not in TERMINAL_DEPLOYMENT_STATUSES:
            self._states[deployment_id] = (version, stored)
        self._wake(woken)
        return status

    def _step(
        self,
        conn: Connection,
        stored: store.StoredDeployment,
        event: machine.Input,
        woken: set[str],
    ) -> bool:
        """Step the machine and persist; whether anything was written."""
        now = self.clock()
        outcome = machine.step(stored.state, event, now)
        if not outcome.changed:
            return False
        for action in outcome.actions:
            match action:
                case machine.Dispatch(target_id, event_name):
                    store.add_command(conn, target_id, stored.state.deployment_id, event_name, now)
                    woken.add(target_id)
                case machine.Finished(status):
                    self._finished(conn, stored, status, now)
                case machine.StartRollback():
                    rollback.start(conn, stored, lambda req: self._launch(conn, req, woken))
                case machine.Notify(event_type, target_id):
                    notify.enqueue(conn, stored, event_type, target_id, now, self.config.region)
        # Saved after the actions, which may add to the stored info (rollbackInfo).
        store.save(conn, stored, sorted(outcome.changed_targets))
        return True

    def _finished(
        self, conn: Connection, stored: store.StoredDeployment, status: DeploymentStatus, now: float
    ) -> None:
        state = stored.state
        store.fail_open_commands(conn, state.deployment_id, now)
        summary = {
            "deploymentId": state.deployment_id,
            "status": status.value,
            "endTime": now,
            "createTime": state.create_time,
        }
        changes: dict[str, Any] = {"lastAttemptedDeployment": summary}
        if status == DeploymentStatus.SUCCEEDED:
            changes["lastSuccessfulDeployment"] = summary
            changes["targetRevision"] = stored.info.get("revision")
        resources.update_deployment_group_doc(
            conn, stored.application_name, stored.group_name, changes
        )
