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
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import Connection

from shipyard import notify
from shipyard.config import ServerConfig
from shipyard.engine import launch, machine, outdated, rollback, traffic_steps
from shipyard.engine.after_commit import AfterCommit
from shipyard.engine.agent_side import AgentSide, BundleUrl
from shipyard.engine.lifecycle import SERVER_EVENTS
from shipyard.errors import ApiError
from shipyard.model import (
    TERMINAL_DEPLOYMENT_STATUSES,
    DeploymentStatus,
)
from shipyard.provision import (
    GREEN_TAG,
    Provisioner,
    ProvisionerConfig,
    ProvisionError,
    get_provisioner,
)
from shipyard.store import credentials, resources
from shipyard.store import deployments as store
from shipyard.store import groups as group_store
from shipyard.store import host_commands as commands
from shipyard.store import instances as instance_store
from shipyard.store.db import Database
from shipyard.traffic import RouterConfig, TrafficRouter, backends_for, get_router

log = logging.getLogger("shipyard.runner")

SWEEP_SECONDS = 1.0
OUTDATED_EVERY = 5  # sweeps between looks for hosts that joined a group


def limit_exceeded(group_name: str, active: str) -> ApiError:
    """CodeDeploy's answer to a second deployment while one is active in the group."""
    return ApiError(
        "DeploymentLimitExceededException",
        f"The Deployment Group '{group_name}' already has an active Deployment '{active}'",
    )


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
        self.router: TrafficRouter | None = None
        if config.traffic_router:
            self.router = get_router(
                RouterConfig(kind=config.traffic_router, address=config.traffic_address)
            )
        # (deployment, target, event) of the traffic jobs running in worker threads
        self._traffic_running: set[tuple[str, str, str]] = set()
        self._traffic_tasks: set[asyncio.Task[None]] = set()
        self._host_epoch: dict[str, int] = {}
        self._started_at = 0.0
        self._sweeps = 0
        self.provisioner: Provisioner | None = None
        if config.provisioner:
            self.provisioner = get_provisioner(
                ProvisionerConfig(kind=config.provisioner, work_dir=config.data_dir / "hosts")
            )
        super().__init__()

    # ---- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self._started_at = self.clock()
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
                self.recheck_waiting()
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
        self._sweeps += 1
        if self._sweeps % OUTDATED_EVERY == 0:
            self.update_outdated()

    def update_outdated(self) -> list[str]:
        """Start follow-on deployments for hosts that joined groups after their last
        success (outdatedInstancesStrategy UPDATE); returns the new deployments' ids."""
        started: list[str] = []
        with self.db.tx() as conn:
            groups = group_store.all_deployment_groups(conn)
        for group in groups:
            after = AfterCommit()
            with self.db.tx() as conn:
                found = outdated.outdated_hosts(conn, group)
                request = outdated.request(conn, group, *found) if found else None
                if found is None or request is None:
                    continue
                new = self._launch(conn, request, after)
                root = store.load(conn, found[0])
                if root is not None:
                    outdated.link(root, new)
                    store.save(conn, root)
                    store.save(conn, new)
                started.append(new.state.deployment_id)
            self._after_commit(after)
        return started

    def _check_agents(self, deployment_id: str) -> None:
        cached = self._states.get(deployment_id)
        if cached is None:
            return  # reloaded on its next step; checked on the next sweep
        self._resume_traffic(cached[1])
        state = cached[1].state
        running = [
            t.target_id
            for t in state.targets.values()
            if t.in_flight and (current := t.current()) and current.name not in SERVER_EVENTS
        ]
        if not running:
            return
        now = self.clock()
        # A host counts from the later of its last poll and the deployment's start.
        since = max(now - self.config.agent_timeout, 0.0)
        with self.db.tx() as conn:
            silent = commands.silent_instances(conn, running, since)
        # Nobody could poll a server that was down: count from its own start too.
        started = max(state.start_time or state.create_time, self._started_at)
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
        after = AfterCommit()
        with self.db.tx() as conn:
            group_name = request.group["deploymentGroupName"]
            active = store.active_for_group(conn, request.app_name, group_name)
            if active is not None:
                raise limit_exceeded(group_name, active)
            stored = self._launch(conn, request, after)
        if stored.state.status not in TERMINAL_DEPLOYMENT_STATUSES:
            self._states[stored.state.deployment_id] = (2, stored)
        self._after_commit(after)
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
        after = AfterCommit()
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
                raise limit_exceeded(group_name, running)
            new = self._launch(conn, request, after)
            result = {"rollbackDeploymentId": new.state.deployment_id}
            if active is not None:
                stopped = store.load(conn, active)
                if stopped is not None:
                    rollback.link(stopped, new, "Emergency rollback to the last good revision")
                    store.save(conn, stopped)
                    store.save(conn, new)
                result["stoppedDeploymentId"] = active
        self._after_commit(after)
        return result

    def _launch(
        self, conn: Connection, request: launch.LaunchRequest, after: AfterCommit
    ) -> store.StoredDeployment:
        now = self.clock()
        stored = launch.build(
            conn, request, now, self.config.event_timeout, self.config.alarm_poll_seconds
        )
        store.insert(conn, stored.state, stored.info, stored.application_name, stored.group_name)
        launch.record_start(conn, stored, now)
        self._step(conn, stored, machine.Start(), after)
        return stored

    def apply(self, deployment_id: str, event: machine.Input) -> DeploymentStatus | None:
        after = AfterCommit()
        with self.db.tx() as conn:
            stored = self._apply_in(conn, deployment_id, event, after)
        self._after_commit(after)
        return stored.state.status if stored is not None else None

    def _apply_in(
        self, conn: Connection, deployment_id: str, event: machine.Input, after: AfterCommit
    ) -> store.StoredDeployment | None:
        """Lock, step and save one deployment inside the caller's transaction.

        The state this process wrote last is reused when the row's version shows
        nobody else (another replica) has written since; otherwise it is re-read. A
        second step in the same transaction starts from the first one's result."""
        earlier = self._states.pop(deployment_id, None)
        cached = after.states.pop(deployment_id, None) or earlier
        version = store.lock_version(conn, deployment_id)
        if version is None:
            return None
        if cached is not None and cached[0] == version:
            stored = cached[1]
        else:
            loaded = store.load(conn, deployment_id)
            assert loaded is not None  # the row is locked
            stored = loaded
        if self._step(conn, stored, event, after):
            version += 1
        after.states[deployment_id] = (version, stored)
        return stored

    def _step(
        self,
        conn: Connection,
        stored: store.StoredDeployment,
        event: machine.Input,
        after: AfterCommit,
    ) -> bool:
        """Step the machine and persist; whether anything was written."""
        now = self.clock()
        outcome = machine.step(stored.state, event, now)
        if not outcome.changed:
            return False
        # Saved first: a rollback launched below ranks hosts by these very results.
        store.save(conn, stored, sorted(outcome.changed_targets), with_info=False)
        rolled_back = False
        notices = notify.Notices(conn, stored, now, self.config.region)
        for action in outcome.actions:
            if isinstance(action, machine.Dispatch):
                self._count_dispatch(action.target_id)
            match action:
                case machine.Dispatch(target_id, event_name) if event_name in SERVER_EVENTS:
                    after.traffic.append(self._traffic_job(stored, target_id, event_name))
                case machine.Dispatch(target_id, event_name, acknowledged=True):
                    command_id = commands.add_command(
                        conn, target_id, stored.state.deployment_id, event_name, now, handed=True
                    )
                    after.handed[target_id] = (command_id, event_name)
                case machine.Dispatch(target_id, event_name):
                    commands.add_command(
                        conn, target_id, stored.state.deployment_id, event_name, now
                    )
                    after.wake.add(target_id)
                case machine.RetireHosts(target_ids):
                    # TERMINATE: the original hosts leave the fleet; their agents'
                    # keys stop working (a provisioned host is removed by its owner).
                    for name in target_ids:
                        if GREEN_TAG in instance_store.instance_tags(conn, name):
                            after.unprovision.append(name)
                        instance_store.deregister_instance(conn, name, now)
                        credentials.revoke_principal(conn, "instance", name)
                case machine.RestoreTraffic(target_id):
                    after.traffic.append(
                        self._traffic_job(stored, target_id, traffic_steps.RESTORE)
                    )
                case machine.Finished(status):
                    self._finished(conn, stored, status, now)
                case machine.StartRollback():
                    rollback.start(conn, stored, lambda req: self._launch(conn, req, after))
                    rolled_back = True
                case machine.Notify(event_type, target_id):
                    notices.add(event_type, target_id)
        if rolled_back:  # rollbackInfo was added to the stored info (a terminal
            store.save(conn, stored)  # deployment, so no cached state to keep in step)
        return True

    def _finished(
        self, conn: Connection, stored: store.StoredDeployment, status: DeploymentStatus, now: float
    ) -> None:
        state = stored.state
        commands.fail_open_commands(conn, state.deployment_id, now)
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

    # ---- what happens after a commit ------------------------------------------------

    def _count_dispatch(self, target_id: str) -> None:
        """Every event dispatched to a host bumps its epoch: a traffic restore made
        before it must then leave the host's traffic alone."""
        self._host_epoch[target_id] = self._host_epoch.get(target_id, 0) + 1

    def _after_commit(self, after: AfterCommit) -> None:
        for deployment_id, (version, stored) in after.states.items():
            if stored.state.status not in TERMINAL_DEPLOYMENT_STATUSES:
                self._states[deployment_id] = (version, stored)
        self._wake(after.wake)
        for job in after.traffic:
            self._start_traffic(job)
        if after.unprovision and self.provisioner is not None:
            self._in_background(self._remove_hosts(self.provisioner, list(after.unprovision)))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._traffic_tasks.add(task)  # a reference, so the task is not collected early
        task.add_done_callback(self._traffic_tasks.discard)

    async def _remove_hosts(self, provisioner: Provisioner, names: list[str]) -> None:
        for name in names:
            try:
                await asyncio.to_thread(provisioner.stop_host, name)
            except ProvisionError as exc:
                log.warning("could not remove provisioned host %s: %s", name, exc)

    def _traffic_job(
        self, stored: store.StoredDeployment, target_id: str, event: str
    ) -> traffic_steps.TrafficJob:
        backends = tuple(backends_for(stored.info.get("loadBalancerInfo")))
        epoch = self._host_epoch.get(target_id, 0)
        return traffic_steps.TrafficJob(
            stored.state.deployment_id, target_id, event, backends, epoch
        )

    def _start_traffic(self, job: traffic_steps.TrafficJob) -> None:
        key = (job.deployment_id, job.target_id, job.event)
        if key in self._traffic_running:
            return
        self._traffic_running.add(key)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (tools, tests)
            self._finish_traffic(job, self._run_traffic(job))
            return
        self._in_background(self._traffic_task(job))

    async def _traffic_task(self, job: traffic_steps.TrafficJob) -> None:
        try:
            if job.event != traffic_steps.RESTORE:
                self.apply(job.deployment_id, machine.Acknowledged(job.target_id, job.event))
            result = await asyncio.to_thread(self._run_traffic, job)
            self._finish_traffic(job, result)
        except Exception:
            self._traffic_running.discard((job.deployment_id, job.target_id, job.event))
            log.exception("traffic job %s failed", job)

    def _run_traffic(self, job: traffic_steps.TrafficJob) -> tuple[bool, dict[str, str]]:
        config = self.config

        def still_ours() -> bool:
            return self._host_epoch.get(job.target_id, 0) == job.epoch

        return traffic_steps.run(
            self.router, job, config.drain_seconds, config.health_seconds, still_ours
        )

    def _finish_traffic(
        self, job: traffic_steps.TrafficJob, result: tuple[bool, dict[str, str]]
    ) -> None:
        self._traffic_running.discard((job.deployment_id, job.target_id, job.event))
        succeeded, diagnostics = result
        if job.event == traffic_steps.RESTORE:
            log.info("restore traffic for %s: %s", job.target_id, diagnostics["message"])
            return
        self.apply(
            job.deployment_id, machine.Completed(job.target_id, job.event, succeeded, diagnostics)
        )

    def _resume_traffic(self, stored: store.StoredDeployment) -> None:
        """After a restart: server events in flight that no worker is running."""
        for target in stored.state.targets.values():
            current = target.current()
            if target.in_flight and current is not None and current.name in SERVER_EVENTS:
                self._start_traffic(self._traffic_job(stored, target.target_id, current.name))
