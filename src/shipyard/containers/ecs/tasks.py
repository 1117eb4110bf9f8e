"""Following one task through its life, for the reconciler.

A started task (PENDING) turns RUNNING when its containers run; it is registered in its
task set's target groups, its containers' health checks run when due, and it counts as
ready once those checks and its target groups say healthy. An essential container that
exits stops the task (EssentialContainerExited); so do failed container health checks
and, after the service's grace period, failed target group health checks. A task meant
to stop is deregistered first (DEACTIVATING) and its containers stopped only once its
targets have drained (or the drain timeout passed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.containers.ecs import launches
from shipyard.containers.ecs.capacity import Observed
from shipyard.containers.ecs.health import UNHEALTHY, CheckState, task_health
from shipyard.containers.ecs.scheduling import (
    DEACTIVATING,
    PENDING,
    PROVISIONING,
    RUNNING,
    STOPPED,
    Backoff,
)
from shipyard.containers.targets import Target, TargetState
from shipyard.store import ecs as store
from shipyard.store.ecs import Service, Task

if TYPE_CHECKING:
    from shipyard.containers.ecs.reconciler import Reconciler

Json = dict[str, Any]
SETTLE_SECONDS = 10.0
Health = dict[str, dict[Any, TargetState]]


class TaskFollower:
    def __init__(self, reconciler: Reconciler, drain_timeout: float) -> None:
        self.r = reconciler
        self.drain_timeout = drain_timeout
        self.registered: set[str] = set()  # tasks registered by this process

    # ---- writes -----------------------------------------------------------------------

    def update(
        self, task_id: str, change: Callable[[Json], None], *, last_status: str | None = None
    ) -> Task | None:
        """Re-read the task and apply ``change`` to its doc (an API call may have
        changed it meanwhile: StopTask)."""
        with self.r.db.tx() as conn:
            found = store.get_tasks(conn, [task_id])
            if not found:
                return None
            task = found[0]
            change(task.doc)
            if last_status is not None:
                task.last_status = last_status
            task.updated = self.r.clock()
            task.doc["version"] = int(task.doc.get("version", 1)) + 1
            store.save_task(conn, task)
            return task

    def request_stop(self, task_id: str, code: str, reason: str) -> None:
        with self.r.db.tx() as conn:
            found = store.get_tasks(conn, [task_id])
            if not found or found[0].desired_status == STOPPED:
                return
            task = found[0]
            task.desired_status = STOPPED
            task.doc.update(stopCode=code, stoppedReason=reason)
            task.updated = self.r.clock()
            store.save_task(conn, task)

    def fail(self, task_id: str, code: str, reason: str, service: Service, now: float) -> None:
        """The task ended by failure before it was ever ready: STOPPED, an event, and
        its task set backs off."""
        task = self.update(
            task_id, lambda doc: _stopped(doc, code, reason, now), last_status=STOPPED
        )
        if task is None:
            return
        with self.r.db.tx() as conn:
            found = store.get_tasks(conn, [task_id])
            if found and found[0].desired_status != STOPPED:
                found[0].desired_status = STOPPED
                store.save_task(conn, found[0])
        backoff = self.r.backoff.get(task.task_set_id, Backoff()).failed(now)
        self.r.backoff[task.task_set_id] = backoff
        self.r.note(
            service.id,
            f"(service {service.name}) is unable to consistently start tasks successfully: "
            f"(task {task_id}) {reason}. Next attempt in {backoff.wait(now):g} s.",
        )

    # ---- following --------------------------------------------------------------------

    async def follow(
        self,
        task: Task,
        service: Service,
        load_balancers: list[Json],
        observed: Sequence[Observed],
        health: Health,
    ) -> bool:
        """One look at the task; whether it is still changing."""
        now = self.r.clock()
        if task.desired_status == STOPPED:
            return await self._stop(task, service, health, now)
        if task.last_status == PROVISIONING:  # a start this process never finished
            self._discard(task, observed)
            self.fail(task.id, "TaskFailedToStart", "The start was interrupted", service, now)
            return True
        exited = _exited_essential(task.doc, observed)
        if exited is not None:
            await self._deregister(task)
            self._discard(task, observed)
            reason = f"Essential container in task exited: {exited}"
            if _settled(task.doc, now):  # it had served a while: replaced at once
                self.update(
                    task.id,
                    lambda d: _stopped(d, "EssentialContainerExited", reason, now),
                    last_status=STOPPED,
                )
                self.request_stop(task.id, "EssentialContainerExited", reason)
                self.r.note(
                    service.id, f"(service {service.name}) (task {task.id}) stopped: {reason}."
                )
            else:
                self.fail(task.id, "EssentialContainerExited", reason, service, now)
            return True
        if task.id not in self.registered:
            await self._register(task, service, load_balancers)
        checks = await self._health_checks(task, observed, now)
        return self._judge(task, service, checks, health, now)

    def _judge(
        self, task: Task, service: Service, checks: dict[str, Json], health: Health, now: float
    ) -> bool:
        statuses = [c["status"] for c in checks.values()]
        container_health = task_health(statuses)
        states = [
            health.get(t["targetGroupArn"], {}).get(Target(t["address"], t["port"]))
            for t in task.doc.get("targets", [])
        ]
        targets_ok = all(state is TargetState.HEALTHY for state in states)
        ready = (
            container_health != UNHEALTHY
            and (not checks or container_health == "HEALTHY")
            and targets_ok
        )
        was_ready = bool(task.doc.get("everReady"))
        settles = ready and not task.doc.get("settled") and _settled(task.doc, now)

        def change(doc: Json) -> None:
            doc["checks"] = checks
            doc["healthStatus"] = container_health
            for container in doc["containers"]:
                if container["name"] in checks:
                    container["healthStatus"] = checks[container["name"]]["status"]
            doc["ready"] = ready
            doc["everReady"] = was_ready or ready
            if ready:
                doc.setdefault("readyAt", now)
            doc["settled"] = bool(doc.get("settled")) or settles
            doc.setdefault("startedAt", now)

        if (
            ready != task.doc.get("ready")
            or task.last_status != RUNNING
            or checks != task.doc.get("checks")
            or settles
        ):
            self.update(task.id, change, last_status=RUNNING)
        if settles:  # its task set starts well again: the back-off is over
            self.r.backoff.pop(task.task_set_id, None)
        if container_health == UNHEALTHY:
            self.request_stop(
                task.id, "ServiceSchedulerInitiated", "Task failed container health checks"
            )
            if not _settled(task.doc, now):
                self.r.backoff[task.task_set_id] = self.r.backoff.get(
                    task.task_set_id, Backoff()
                ).failed(now)
        grace = float(service.doc.get("healthCheckGracePeriodSeconds", 0))
        unhealthy = [
            t["targetGroupArn"]
            for t, state in zip(task.doc.get("targets", []), states, strict=True)
            if state is TargetState.UNHEALTHY
        ]
        if unhealthy and now - float(task.doc.get("registeredAt", now)) >= grace:
            self.request_stop(
                task.id,
                "ServiceSchedulerInitiated",
                f"Task failed ELB health checks in (target-group {unhealthy[0]})",
            )
        return not ready

    async def _register(self, task: Task, service: Service, load_balancers: list[Json]) -> None:
        pairs = launches.targets(task.doc, load_balancers)
        groups = self.r.target_groups
        if groups is not None:
            for arn in sorted({arn for arn, _ in pairs}):
                mine = [t for a, t in pairs if a == arn]
                try:
                    await asyncio.to_thread(groups.register, arn, mine)
                except Exception as exc:  # the group is gone or its load balancer down
                    self.r.note(
                        service.id,
                        f"(service {service.name}) failed to register targets in "
                        f"(target-group {arn}): {exc}",
                    )
                    return  # tried again next pass
                self.r.note(
                    service.id,
                    f"(service {service.name}) registered {len(mine)} targets in "
                    f"(target-group {arn})",
                )
        self.registered.add(task.id)
        now = self.r.clock()

        def change(doc: Json) -> None:
            doc["targets"] = [
                {"targetGroupArn": a, "address": t.address, "port": t.port} for a, t in pairs
            ]
            doc.setdefault("registeredAt", now)

        self.update(task.id, change)
        task.doc["targets"] = [
            {"targetGroupArn": a, "address": t.address, "port": t.port} for a, t in pairs
        ]

    async def _health_checks(
        self, task: Task, observed: Sequence[Observed], now: float
    ) -> dict[str, Json]:
        checks: dict[str, Json] = {}
        definitions = task.doc.get("healthChecks", {})
        running = {o.container: o for o in observed if o.running}
        for name, check in definitions.items():
            state = CheckState.from_doc(task.doc.get("checks", {}).get(name))
            found = running.get(name)
            if found is not None and state.due(now):
                ok = await asyncio.to_thread(
                    self.r.capacity.check, found.endpoint, found.id, check["command"]
                )
                started = float(task.doc.get("startedAt", now))
                state = state.after(check, ok, started, self.r.clock())
            checks[name] = state.to_doc()
        return checks

    # ---- stopping ---------------------------------------------------------------------

    async def _stop(self, task: Task, service: Service, health: Health, now: float) -> bool:
        if task.last_status in (PROVISIONING, PENDING, RUNNING):
            if task.last_status != PROVISIONING and task.doc.get("targets"):
                await self._deregister(task)
                self.r.note(
                    service.id,
                    f"(service {service.name}) has begun draining connections on 1 tasks.",
                )
            self.update(task.id, lambda doc: doc.update(stoppingAt=now), last_status=DEACTIVATING)
            return True
        started = float(task.doc.get("stoppingAt", now))
        draining = any(
            Target(t["address"], t["port"]) in health.get(t["targetGroupArn"], {})
            for t in task.doc.get("targets", [])
        )
        if draining and now - started < self.drain_timeout:
            return True
        self.r.background(task.id, self._stop_containers(task, service))
        return True

    async def _stop_containers(self, task: Task, service: Service) -> None:
        ids = launches.runtime_ids(task.doc)
        if ids and "endpoint" in task.doc:
            timeout = max(int(c.get("stopTimeout", 30)) for c in task.doc["containers"])
            await asyncio.to_thread(self.r.capacity.stop, int(task.doc["endpoint"]), ids, timeout)
        now = self.r.clock()
        code = task.doc.get("stopCode", "ServiceSchedulerInitiated")
        reason = task.doc.get("stoppedReason", "Task stopped")
        self.update(task.id, lambda doc: _stopped(doc, code, reason, now), last_status=STOPPED)
        self.registered.discard(task.id)
        self.r.note(
            service.id, f"(service {service.name}) has stopped 1 running tasks: (task {task.id})."
        )

    async def _deregister(self, task: Task) -> None:
        groups = self.r.target_groups
        if groups is None:
            return
        targets = task.doc.get("targets", [])
        for arn in sorted({t["targetGroupArn"] for t in targets}):
            mine = [Target(t["address"], t["port"]) for t in targets if t["targetGroupArn"] == arn]
            try:
                await asyncio.to_thread(groups.deregister, arn, mine)
            except Exception:  # the group is gone: nothing left to drain
                continue
        self.registered.discard(task.id)

    def _discard(self, task: Task, observed: Sequence[Observed]) -> None:
        by_endpoint: dict[int, list[str]] = {}
        for found in observed:
            by_endpoint.setdefault(found.endpoint, []).append(found.id)
        for endpoint, ids in by_endpoint.items():
            self.r.background(
                f"discard-{task.id}", asyncio.to_thread(self.r.capacity.remove, endpoint, ids)
            )


def _settled(doc: Json, now: float) -> bool:
    """Whether the task has been ready for SETTLE_SECONDS: one that fails sooner counts
    as a failed start (its task set backs off), one that fails later is replaced at once."""
    ready_at = doc.get("readyAt")
    return ready_at is not None and now - float(ready_at) >= SETTLE_SECONDS


def _exited_essential(doc: Json, observed: Sequence[Observed]) -> str | None:
    """What ended the task's first essential container that no longer runs, else None."""
    by_name = {o.container: o for o in observed}
    for container in doc["containers"]:
        if not container["essential"]:
            continue
        found = by_name.get(container["name"])
        if found is None:
            return f"container {container['name']} is gone"
        if not found.running:
            return f"container {container['name']} exited with code {found.exit_code}"
    return None


def _stopped(doc: Json, code: str, reason: str, now: float) -> None:
    doc.setdefault("stopCode", code)
    doc.setdefault("stoppedReason", reason)
    doc["stoppedAt"] = now
    doc.setdefault("stoppingAt", now)
    doc["ready"] = False
    for container in doc["containers"]:
        container["lastStatus"] = "STOPPED"
