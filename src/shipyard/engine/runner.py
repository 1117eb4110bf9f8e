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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from shipyard.config import ServerConfig
from shipyard.engine import launch, machine, rollback
from shipyard.errors import ApiError
from shipyard.model import (
    AGENT_ERROR_CODES,
    TERMINAL_DEPLOYMENT_STATUSES,
    CommandStatus,
    DeploymentStatus,
    LifecycleEventStatus,
)
from shipyard.store import deployments as store
from shipyard.store import resources
from shipyard.store.db import Database

log = logging.getLogger("shipyard.runner")

SWEEP_SECONDS = 1.0
# Between wake-ups a poller re-reads the database, so work queued by another
# replica is found even though only this process's waiters are notified.
POLL_RECHECK_SECONDS = 1.0
LOG_TAIL_BYTES = 4096

BundleUrl = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class HostCommandView:
    id: int
    deployment_id: str
    command_name: str
    execution_id: str


def execution_id(deployment_id: str, instance: str) -> str:
    """One id per deployment and host (the model's pattern is ``^[^/]+/[^/]+/[^/]+/.+$``),
    so an agent may fetch the specification once and reuse it for every event."""
    return f"{deployment_id}/host/1/{instance}"


class Runner:
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
        self._waiters: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False
        # instance name -> polls this process holds open for it right now
        self._polling: dict[str, int] = {}
        # deployment id -> (row version, state) as this process last wrote it
        self._states: dict[str, tuple[int, store.StoredDeployment]] = {}

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

    def release_polls(self) -> None:
        """Shutting down: answer every open long poll now, with no command."""
        self._closing = True
        for waiter in self._waiters.values():
            waiter.set()

    def _wake(self, instances: set[str]) -> None:
        for name in instances:
            waiter = self._waiters.get(name)
            if waiter is not None:
                waiter.set()

    # ---- the agent protocol -------------------------------------------------------

    async def poll(self, instance: str, timeout: float) -> HostCommandView | None:
        """The next command for ``instance``, waiting up to ``timeout`` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.setdefault(instance, asyncio.Event())
        self._polling[instance] = self._polling.get(instance, 0) + 1
        try:
            return await self._poll(instance, waiter, deadline)
        finally:
            self._polling[instance] -= 1
            if not self._polling[instance]:
                del self._polling[instance]

    async def _poll(
        self, instance: str, waiter: asyncio.Event, deadline: float
    ) -> HostCommandView | None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            waiter.clear()
            now = self.clock()
            with self.db.tx() as conn:
                command = store.claim_next_command(
                    conn, instance, now, now - self.config.reoffer_seconds
                )
            if command is not None:
                return HostCommandView(
                    command.id,
                    command.deployment_id,
                    command.command_name,
                    execution_id(command.deployment_id, instance),
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), min(remaining, POLL_RECHECK_SECONDS))
        return None

    def _own_command(self, conn: Connection, instance: str, command_id: int) -> store.HostCommand:
        command = store.get_command(conn, command_id)
        if command is None or command.instance_name != instance:
            raise ApiError("ClientException", f"Unknown host command {command_id}")
        return command

    def acknowledge(self, instance: str, command_id: int) -> str:
        with self.db.tx() as conn:
            command = self._own_command(conn, instance, command_id)
            if command.status != CommandStatus.IN_PROGRESS.value:
                return command.status
            store.set_command(conn, command_id, acknowledged=self.clock())
        self.apply(command.deployment_id, machine.Acknowledged(instance, command.command_name))
        if self._running(command.deployment_id, instance, command.command_name):
            return CommandStatus.IN_PROGRESS.value
        # The engine no longer wants this event (the deployment stopped or ended):
        # the agent must not run it.
        with self.db.tx() as conn:
            store.set_command(
                conn, command_id, status=CommandStatus.FAILED.value, completed=self.clock()
            )
        return CommandStatus.FAILED.value

    def _running(self, deployment_id: str, instance: str, event: str) -> bool:
        """Whether ``event`` is the one ``instance`` is running in the deployment."""
        cached = self._states.get(deployment_id)
        if cached is not None:
            stored: store.StoredDeployment | None = cached[1]
        else:
            with self.db.tx() as conn:
                stored = store.load(conn, deployment_id)
        if stored is None:
            return False
        target = stored.state.targets.get(instance)
        current = target.current() if target is not None else None
        return (
            current is not None
            and current.name == event
            and current.status == LifecycleEventStatus.IN_PROGRESS
        )

    def specification(self, instance: str, execution: str) -> dict[str, Any]:
        parts = execution.split("/", 3)
        if len(parts) != 4 or parts[3] != instance:
            raise ApiError("ClientException", f"Unknown deployment execution {execution!r}")
        with self.db.tx() as conn:
            stored = store.load(conn, parts[0])
        if stored is None or instance not in stored.state.targets:
            raise ApiError("ClientException", f"Unknown deployment execution {execution!r}")
        return self._spec_payload(stored)

    def _spec_payload(self, stored: store.StoredDeployment) -> dict[str, Any]:
        info = stored.info
        revision = info.get("revision") or {}
        payload: dict[str, Any] = {
            "DeploymentId": stored.state.deployment_id,
            "DeploymentGroupId": info["deploymentGroupId"],
            "DeploymentGroupName": stored.group_name,
            "ApplicationName": stored.application_name,
            "DeploymentCreator": info.get("creator", "user"),
            "DeploymentType": "IN_PLACE",
            "AppSpecFilename": "appspec.yml",
            "AgentActionOverrides": {
                "AgentOverrides": {"FileExistsBehavior": info.get("fileExistsBehavior", "DISALLOW")}
            },
            "MaxBundleBytes": self.config.max_bundle_bytes,
        }
        if revision.get("revisionType") == "S3":
            loc = revision["s3Location"]
            s3: dict[str, Any] = {
                "Bucket": loc["bucket"],
                "Key": loc["key"],
                "BundleType": loc.get("bundleType", "zip"),
            }
            if loc.get("version"):
                s3["Version"] = loc["version"]
            if loc.get("eTag"):
                s3["ETag"] = loc["eTag"]
            payload["Revision"] = {"RevisionType": "S3", "S3Revision": s3}
            if self.bundle_url is not None:
                payload["BundleUrl"] = self.bundle_url(loc)
        elif revision.get("revisionType") == "GitHub":
            loc = revision["gitHubLocation"]
            account, _, repo = loc["repository"].partition("/")
            payload["Revision"] = {
                "RevisionType": "GitHub",
                "GitHubRevision": {
                    "Account": account,
                    "Repository": repo,
                    "CommitId": loc["commitId"],
                    "BundleType": "tar",
                },
            }
            payload["GitUrl"] = f"{self.config.git_base_url.rstrip('/')}/{loc['repository']}"
        return payload

    def append_log(self, instance: str, command_id: int, chunk: str) -> str:
        with self.db.tx() as conn:
            command = self._own_command(conn, instance, command_id)
            store.append_log(
                conn, command.deployment_id, instance, command.command_name, chunk, self.clock()
            )
            return command.status

    def complete(
        self, instance: str, command_id: int, status: str, diagnostics: dict[str, Any]
    ) -> None:
        if status not in (CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value):
            raise ApiError(
                "ClientException", f"CommandStatus must be Succeeded or Failed: {status}"
            )
        with self.db.tx() as conn:
            command = self._own_command(conn, instance, command_id)
            if command.status in (CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value):
                return  # a repeated completion changes nothing
            store.set_command(conn, command_id, status=status, completed=self.clock())
        succeeded = status == CommandStatus.SUCCEEDED.value
        self.apply(
            command.deployment_id,
            machine.Completed(
                instance, command.command_name, succeeded, lifecycle_diagnostics(diagnostics)
            ),
        )


def lifecycle_diagnostics(payload: dict[str, Any]) -> dict[str, str]:
    """The agent's completion payload as a LifecycleEvent ``diagnostics`` member."""
    try:
        code = AGENT_ERROR_CODES[int(payload.get("error_code", 5))]
    except (KeyError, ValueError, TypeError):
        code = AGENT_ERROR_CODES[5]
    log_text = str(payload.get("log", ""))
    tail = log_text.encode()[-LOG_TAIL_BYTES:].decode(errors="ignore")
    return {
        "errorCode": code.value,
        "scriptName": str(payload.get("script_name", "")),
        "message": str(payload.get("message", "")) or code.value,
        "logTail": tail,
    }
