"""Load, step, persist, act: the I/O half of the engine.

Every change to a deployment is one call to ``apply``: in one transaction it loads
the deployment (row-locked on PostgreSQL so replicas take turns), lets the pure
machine decide, writes what changed and queues host commands; after the commit it
wakes the agents that have new work and starts the server-run steps. The sweeper
(``sweeper``) feeds timer inputs; agents talk to ``agents``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from shipyard import notify
from shipyard.cluster.share import WorkShare
from shipyard.config import ServerConfig
from shipyard.engine import launch, machine, rollback
from shipyard.engine import messages as m
from shipyard.engine.state import StoredDeployment, Strategy
from shipyard.errors import DeploymentGroupBusy, NoSuchDeploymentGroup, NothingToRollBack
from shipyard.metrics import Metrics
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, DeploymentStatus, new_deployment_id
from shipyard.platforms import platform_for_group
from shipyard.provision import GREEN_TAG, Provisioner, retiring
from shipyard.runner import observed, snapshots
from shipyard.runner.after_commit import RESTORE, RETIRE, AfterCommit
from shipyard.runner.agents import AgentChannel, BundleUrl
from shipyard.runner.server_steps import PlatformSteps, ServerSteps
from shipyard.runner.sweeper import Sweeper
from shipyard.runner.traffic_worker import TrafficWorker
from shipyard.store import credentials, resources
from shipyard.store import deployments as store
from shipyard.store import host_commands as commands
from shipyard.store import instances as instance_store
from shipyard.store.db import Database
from shipyard.traffic import TrafficRouter

log = logging.getLogger("shipyard.runner")

# Deployment states cached at most (see Runner._remember); far more than run at once.
MAX_CACHED_STATES = 256

RollbackTargets = Callable[[dict[str, Any], dict[str, Any]], launch.PlatformTargets | None]


class Runner:
    """The one way to change a deployment, and the parts that act on its decisions."""

    def __init__(
        self,
        config: ServerConfig,
        db: Database,
        clock: Callable[[], float],
        *,
        router: TrafficRouter | None = None,
        provisioner: Provisioner | None = None,
        bundle_url: BundleUrl | None = None,
        platform_steps: PlatformSteps | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.db = db
        self.clock = clock
        self.router = router
        self.provisioner = provisioner
        self.node = retiring.node_name(config.data_dir)  # who removes hosts it started
        # deployment id -> (row version, state) as this process last wrote it
        self._states: dict[str, tuple[int, StoredDeployment]] = {}
        # This replica's part of the work replicas share (one replica on SQLite).
        self.share = WorkShare(db, clock, config.lease_seconds)
        self.agents = AgentChannel(self, bundle_url)
        self.traffic = TrafficWorker(config, router, self.apply)
        # computePlatform -> the steps its server runs; Server's are the traffic worker.
        self.steps: dict[str, ServerSteps] = {"Server": self.traffic}
        for name, build in (platform_steps or {}).items():
            self.steps[name] = build(self.apply)
        self.sweeper = Sweeper(self)
        # The platform's own targets of a manual rollback to a revision (ECS: the
        # service, from the earlier appspec); None: the group's hosts.
        self.rollback_targets: RollbackTargets | None = None

    # ---- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()

    def alive(self) -> bool:
        return self.sweeper.alive()

    def cached(self, deployment_id: str) -> tuple[int, StoredDeployment] | None:
        """(row version, state) as this process last wrote it, if it did."""
        return self._states.get(deployment_id)

    def current(self, deployment_id: str) -> StoredDeployment | None:
        """The deployment as stored now, for reading only: the state this process
        wrote last when the row's version shows nobody wrote since, else read afresh
        (watchers polling GetDeployment then cost one small query)."""
        cached = self._states.get(deployment_id)
        with self.db.tx() as conn:
            if cached is not None and store.version(conn, deployment_id) == cached[0]:
                return cached[1]
            return store.load(conn, deployment_id)

    def _remember(self, deployment_id: str, version: int, stored: StoredDeployment) -> None:
        """Cache the state this process wrote, while the deployment runs.

        Bounded: with replicas, a deployment this one stepped often finishes on another,
        and its entry would stay for good (a 30-minute soak grew each replica by about
        1 MiB a minute). Dropping one is always safe: the version check reads it again."""
        if stored.state.status in TERMINAL_DEPLOYMENT_STATUSES:
            return
        self._states.pop(deployment_id, None)  # re-inserted last: the oldest go first
        self._states[deployment_id] = (version, stored)
        while len(self._states) > MAX_CACHED_STATES:
            self._states.pop(next(iter(self._states)))

    # ---- the one way to change a deployment -------------------------------------------

    def create(self, request: launch.LaunchRequest) -> str:
        """Build, store and start a new deployment atomically; returns its id.

        Raises DeploymentGroupBusy when the group already has an active deployment
        (checked in the same transaction that inserts the new one)."""
        after = AfterCommit()
        with self.db.tx() as conn:
            group_name = request.group["deploymentGroupName"]
            active = store.active_for_group(conn, request.app_name, group_name)
            if active is not None:
                raise DeploymentGroupBusy(group_name, active)
            stored = self.launch_in(conn, request, after)
        self._remember(stored.state.deployment_id, 2, stored)
        self.after_commit(after)
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
                raise NoSuchDeploymentGroup(app, group_name)
            active = store.active_for_group(conn, app, group_name)
        # A traffic shift rolls back in place: its stop shifts the traffic back, in an
        # emergency without waiting for the event in flight.
        in_place = group.get("computePlatform") in ("Lambda", "ECS")
        if active is not None and (not emergency or in_place):
            self.apply(active, m.StopRequested(rollback=True, abandon=emergency))
            with self.db.tx() as conn:
                stopped = store.load(conn, active)
            rolled = (stopped.info if stopped else {}).get("rollbackInfo") or {}
            result: dict[str, Any] = {"stoppedDeploymentId": active}
            if rolled.get("rollbackDeploymentId"):
                result["rollbackDeploymentId"] = rolled["rollbackDeploymentId"]
            elif rolled.get("rollbackMessage"):  # rolled back in place (a traffic shift)
                result["rollbackMessage"] = rolled["rollbackMessage"]
            return result
        if active is not None:
            self.apply(active, m.StopRequested(rollback=False, abandon=True))
        after = AfterCommit()
        with self.db.tx() as conn:
            group = resources.get_deployment_group(conn, app, group_name)
            assert group is not None
            config_name = rollback.manual_config_name(group, emergency=emergency)
            snapshot = snapshots.for_rollback(conn, app, group_name, config_name)
            try:
                if active is not None and group.get("targetRevision"):
                    revision = dict(group["targetRevision"])
                else:
                    revision = rollback.manual_revision(group, snapshot)
                request = rollback.manual_request(
                    app, group, revision, snapshot, emergency=emergency
                )
                if self.rollback_targets is not None:
                    own = self.rollback_targets(group, revision)
                    request = dataclasses.replace(request, platform_targets=own)
            except rollback.RollbackError as exc:
                raise NothingToRollBack(str(exc)) from None
            running = store.active_for_group(conn, app, group_name)
            if running is not None:
                raise DeploymentGroupBusy(group_name, running)
            new = self.launch_in(conn, request, after)
            result = {"rollbackDeploymentId": new.state.deployment_id}
            if active is not None:
                stopped = store.load(conn, active)
                if stopped is not None:
                    rollback.link(stopped, new, "Emergency rollback to the last good revision")
                    store.save(conn, stopped)
                    store.save(conn, new)
                result["stoppedDeploymentId"] = active
        self.after_commit(after)
        return result

    def launch_in(
        self, conn: Connection, request: launch.LaunchRequest, after: AfterCommit
    ) -> StoredDeployment:
        """Build, insert and start a deployment inside the caller's transaction."""
        now = self.clock()
        snapshot = snapshots.for_launch(conn, request)
        config = self.config
        stored = launch.build(
            request,
            snapshot,
            new_deployment_id(),
            now,
            config.event_timeout,
            config.alarm_poll_seconds,
            config.minute_seconds,
        )
        platform_for_group(request.group).prepare(stored, request, config)
        _warn_never_connected(conn, stored)
        store.insert(conn, stored.state, stored.info, stored.application_name, stored.group_name)
        _record_start(conn, stored, now)
        self._step(conn, stored, m.Start(), after)
        log.info(
            "deployment %s created: %s/%s, %d target(s), %s%s",
            stored.state.deployment_id,
            stored.application_name,
            stored.group_name,
            len(stored.state.targets),
            stored.info.get("deploymentConfigName"),
            f" ({request.description})" if request.description else "",
        )
        return stored

    def apply(self, deployment_id: str, event: m.Input) -> DeploymentStatus | None:
        after = AfterCommit()
        with self.db.tx() as conn:
            stored = self.apply_in(conn, deployment_id, event, after)
        self.after_commit(after)
        return stored.state.status if stored is not None else None

    def apply_in(
        self, conn: Connection, deployment_id: str, event: m.Input, after: AfterCommit
    ) -> StoredDeployment | None:
        """Lock, step and save one deployment inside the caller's transaction.

        The state this process wrote last is reused when the row's version shows
        nobody else (another replica) has written since; otherwise it is re-read. A
        second step in the same transaction starts from the first one's result."""
        earlier = self._states.pop(deployment_id, None)
        mine = after.states.pop(deployment_id, None)
        if mine is not None:
            # Stepped earlier in this very transaction (a group commit's batch): the
            # row is locked already and ``mine`` holds its version.
            version, stored = mine
        else:
            locked = store.lock_version(conn, deployment_id)
            if locked is None:
                return None
            version = locked
            if earlier is not None and earlier[0] == version:
                stored = earlier[1]
            else:
                loaded = store.load(conn, deployment_id)
                assert loaded is not None  # the row is locked
                stored = loaded
        version += self._step(conn, stored, event, after)
        after.states[deployment_id] = (version, stored)
        return stored

    def _step(
        self, conn: Connection, stored: StoredDeployment, event: m.Input, after: AfterCommit
    ) -> int:
        """Step the machine and persist; by how much the row's version went up."""
        now = self.clock()
        outcome = machine.step(stored.state, event, now)
        if not outcome.changed:
            return 0
        after.recorded.append(observed.recording(self.metrics, stored, event, outcome, now))
        deployment_id = stored.state.deployment_id
        # Saved first: a rollback launched below ranks hosts by these very results.
        # One version bump per transaction tells other readers it changed.
        bumps = store.save(
            conn,
            stored,
            sorted(outcome.changed_targets),
            with_info=False,
            bump=deployment_id not in after.bumped,
        )
        after.bumped.add(deployment_id)
        rolled_back = False
        notices = notify.Notices(conn, stored, now, self.config.region, after.groups)
        server_events = stored.state.server_events
        steps = self.steps_for(stored)
        for action in outcome.actions:
            if isinstance(action, m.Dispatch):
                steps.dispatched(action.target_id)
            match action:
                case m.Dispatch(target_id, event_name) if event_name in server_events:
                    after.steps.append((stored, target_id, event_name))
                case m.Dispatch(target_id, event_name, acknowledged=True):
                    command_id = commands.add_command(
                        conn, target_id, deployment_id, event_name, now, handed=True
                    )
                    after.handed[target_id] = (command_id, event_name)
                case m.Dispatch(target_id, event_name):
                    commands.add_command(conn, target_id, deployment_id, event_name, now)
                    after.wake.add(target_id)
                case m.RetireHosts(target_ids) if stored.state.strategy == Strategy.TRAFFIC_SHIFT:
                    # After a traffic shift the platform retires the original revision.
                    after.steps.extend((stored, target_id, RETIRE) for target_id in target_ids)
                case m.RetireHosts(target_ids):
                    # TERMINATE: the original hosts leave the fleet; their agents'
                    # keys stop working (a provisioned host is removed by the node
                    # that started it: provision/retiring.py).
                    for name in target_ids:
                        if GREEN_TAG in instance_store.instance_tags(conn, name):
                            retiring.retire(conn, name, self.node)
                        instance_store.deregister_instance(conn, name, now)
                        credentials.revoke_principal(conn, "instance", name)
                case m.RestoreTraffic(target_id):
                    after.steps.append((stored, target_id, RESTORE))
                case m.ShiftTraffic(target_id, weight):
                    after.steps.append((stored, target_id, weight))
                case m.Finished(status):
                    self._finished(conn, stored, status, now)
                case m.StartRollback():
                    self._start_rollback(conn, stored, after)
                    rolled_back = True
                case m.Notify(event_type, target_id):
                    notices.add(event_type, target_id)
        if rolled_back:  # rollbackInfo was added to the stored info (a terminal
            bumps += store.save(conn, stored)  # deployment: no cached state to keep)
        return bumps

    def _start_rollback(
        self, conn: Connection, failed: StoredDeployment, after: AfterCommit
    ) -> None:
        """Roll back the deployment that just ended, or record why it cannot be."""
        snapshot = snapshots.for_rollback(
            conn, failed.application_name, failed.group_name, failed.info["deploymentConfigName"]
        )
        request = rollback.automatic(failed, snapshot)
        if isinstance(request, str):
            failed.info["rollbackInfo"] = {"rollbackMessage": request}
            return
        new = self.launch_in(conn, request, after)
        rollback.link(failed, new, rollback.link_message(failed, new.state.deployment_id))
        store.save(conn, new)

    def _finished(
        self, conn: Connection, stored: StoredDeployment, status: DeploymentStatus, now: float
    ) -> None:
        state = stored.state
        commands.fail_open_commands(conn, state.deployment_id, now)
        took = now - (state.start_time or state.create_time)
        if status == DeploymentStatus.SUCCEEDED:
            log.info("deployment %s Succeeded after %.1f s", state.deployment_id, took)
        else:
            log.warning(
                "deployment %s %s after %.1f s: %s: %s",
                state.deployment_id,
                status.value,
                took,
                state.error_code or "-",
                state.error_message or "-",
            )
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

    def after_commit(self, after: AfterCommit) -> None:
        for deployment_id, (version, stored) in after.states.items():
            self._remember(deployment_id, version, stored)
        self.agents.wake(after.wake)
        for record in after.recorded:
            record()
        for stored, target_id, what in after.steps:
            steps = self.steps_for(stored)
            if isinstance(what, int):
                steps.shift(stored, target_id, what)
            elif what == RESTORE:
                steps.restore(stored, target_id)
            elif what == RETIRE:
                steps.retire(stored, target_id)
            else:
                steps.run(stored, target_id, what)

    def steps_for(self, stored: StoredDeployment) -> ServerSteps:
        """The server-run steps of the deployment's platform."""
        platform = str(stored.info.get("computePlatform") or "Server")
        return self.steps[platform]


def _record_start(conn: Connection, stored: StoredDeployment, now: float) -> None:
    """The group's lastAttemptedDeployment and the revision's use times."""
    state = stored.state
    resources.record_revision_use(conn, stored.application_name, stored.info["revision"], now)
    resources.update_deployment_group_doc(
        conn,
        stored.application_name,
        stored.group_name,
        {
            "lastAttemptedDeployment": {
                "deploymentId": state.deployment_id,
                "status": state.status.value,
                "createTime": state.create_time,
            }
        },
    )


def _warn_never_connected(conn: Connection, stored: StoredDeployment) -> None:
    """Say at once, in the deployment's status messages, which hosts wait for an agent
    that has never connected (they fail only after the agent timeout)."""
    never = instance_store.never_connected(conn, stored.state.targets)
    if never:
        messages = stored.info.setdefault("deploymentStatusMessages", [])
        messages.append(
            f"The agent on {', '.join(never)} had never connected to the server when the "
            "deployment was created: those hosts wait for it (shipyard instance list)"
        )
