"""The reconciler: keeps each task set's tasks running, off the request path.

An asyncio task of the server (a Worker). Each tick reads the live services, their task
sets and unfinished tasks, looks at the containers (capacity.observe) and the target
groups' health, then: follows each task (tasks.py: registration, health checks, failure,
draining and stopping), starts what each task set lacks and stops its surplus
(scheduling.plan, with a back-off for task sets whose tasks keep failing), removes
containers no task claims, and retires drained task sets and deleted services. Starts
and stops run as background jobs in worker threads, so one slow image pull never holds
up the rest. The database is touched only on the event loop's thread, as everywhere
in the server. A restarted server adopts the containers it finds by their labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from shipyard.containers.ecs import launches, names, render
from shipyard.containers.ecs.capacity import Capacity, LaunchFailed, Observed
from shipyard.containers.ecs.podman_service import CapacityError
from shipyard.containers.ecs.scheduling import (
    PROVISIONING,
    STEADY,
    STOPPED,
    Backoff,
    plan,
)
from shipyard.containers.ecs.tasks import TaskFollower
from shipyard.containers.targets import TargetGroups, TargetState
from shipyard.store import ecs as store
from shipyard.store.db import Database
from shipyard.store.ecs import Service, Task, TaskSet

log = logging.getLogger("shipyard.ecs")

STOPPED_KEPT_SECONDS = 3600.0  # stopped tasks stay visible this long (as on ECS)
BUSY_SECONDS = 0.2  # tick period while tasks are starting, draining or not yet healthy
STOP_WAIT_SECONDS = 60.0  # how long a server stop waits for running starts and stops
MAX_PARALLEL_JOBS = 4  # container starts and stops at once (the engine serialises anyway)


@dataclass(frozen=True)
class ReconcilerSettings:
    region: str
    idle_seconds: float = 1.0  # tick period when everything is steady
    drain_timeout: float = 300.0  # longest wait for a target group to finish draining


class Reconciler:
    def __init__(
        self,
        settings: ReconcilerSettings,
        db: Database,
        clock: Callable[[], float],
        capacity: Capacity,
        target_groups: TargetGroups | None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.capacity = capacity
        self.target_groups = target_groups
        self.follower = TaskFollower(self, settings.drain_timeout)
        self.backoff: dict[str, Backoff] = {}
        self.busy: set[str] = set()  # task ids with a start or stop job running
        # Tasks whose job ended during this tick: what the tick read of them is stale.
        self.recent: set[str] = set()
        self._jobs: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_PARALLEL_JOBS)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._steady: dict[str, bool] = {}
        self._unreadable: set[str] = set()  # target groups already logged as unreadable

    # ---- the Worker protocol ----------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        # Jobs are let finish (each is bounded by the engine's timeouts): a cancelled one
        # would leave its worker thread using the engine's connections as they close.
        if self._jobs:
            await asyncio.wait(list(self._jobs), timeout=STOP_WAIT_SECONDS)
        for job in list(self._jobs):
            job.cancel()
        await asyncio.to_thread(self.capacity.close)

    def wake(self) -> None:
        self._wake.set()

    def alive(self) -> bool:
        """Whether its loop runs (GET /readyz)."""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stopping:
            busy = False
            try:
                busy = await self.tick()
            except Exception:
                log.exception("ECS reconciler tick failed")
            period = BUSY_SECONDS if busy else self.settings.idle_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()

    # ---- one tick -----------------------------------------------------------------------

    async def tick(self) -> bool:
        """One pass; whether anything is still changing (the next pass comes sooner)."""
        now = self.clock()
        self.recent.clear()
        with self.db.tx() as conn:
            services = store.live_services(conn)
            sets = store.task_sets(conn, [s.id for s in services])
            tasks = store.unfinished_tasks(conn)
            store.forget_stopped_tasks(conn, now - STOPPED_KEPT_SECONDS)
        if not tasks and not any(self._desired(services, ts) for ts in sets):
            await self._retire(services, sets, [])
            return False
        try:
            observed = await asyncio.to_thread(self.capacity.observe)
        except CapacityError as exc:
            self._note_all(services, f"cannot reach the container engine: {exc}")
            return False
        health = await self._target_health(tasks)
        by_task: dict[str, list[Observed]] = {}
        for found in observed:
            by_task.setdefault(found.task_id, []).append(found)
        by_set = {ts.id: ts for ts in sets}
        by_service = {s.id: s for s in services}
        changing = False
        for task in tasks:
            service = by_service.get(task.service_id)
            current = task.id not in self.busy and task.id not in self.recent
            if current and service is not None:
                ts = by_set.get(task.task_set_id)
                lbs = ts.doc.get("loadBalancers", []) if ts else []
                mine = by_task.get(task.id, [])
                try:
                    changing |= await self.follower.follow(task, service, lbs, mine, health)
                except Exception:  # one task's trouble must not stop the others' care
                    log.exception("following task %s failed", task.id)
                    changing = True
        # Read again: following changed tasks, and API calls may have changed task sets
        # (a scale, a deletion) while this pass waited on the engine.
        with self.db.tx() as conn:
            services = store.live_services(conn)
            sets = store.task_sets(conn, [s.id for s in services])
            tasks = store.unfinished_tasks(conn)
        by_service = {s.id: s for s in services}
        self._remove_orphans(observed, {t.id for t in tasks})
        for ts in sets:
            service = by_service[ts.service_id]
            changing |= self._schedule(service, ts, tasks, now)
        await self._retire(services, sets, tasks)
        return changing or bool(self.busy)

    def _desired(self, services: list[Service], ts: TaskSet) -> int:
        service = next(s for s in services if s.id == ts.service_id)
        return render.desired_of(service, ts)

    async def _target_health(self, tasks: list[Task]) -> dict[str, dict[Any, TargetState]]:
        arns = {t["targetGroupArn"] for task in tasks for t in task.doc.get("targets", [])}
        health: dict[str, dict[Any, TargetState]] = {}
        if self.target_groups is None:
            return health
        for arn in sorted(arns):
            try:
                health[arn] = dict(await asyncio.to_thread(self.target_groups.health, arn))
            except Exception as exc:  # a deleted group: its targets are gone with it
                if arn not in self._unreadable:
                    log.warning("target group %s cannot be read: %s", arn, exc)
                self._unreadable.add(arn)
                health[arn] = {}
        return health

    def _schedule(self, service: Service, ts: TaskSet, tasks: list[Task], now: float) -> bool:
        desired = render.desired_of(service, ts)
        mine = render.live(tasks, ts.id)
        backoff = self.backoff.get(ts.id, Backoff())
        decided = plan(desired, [render.task_view(t) for t in mine], backoff, now)
        for task_id in decided.stop:
            self.follower.request_stop(
                task_id, "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment)"
            )
        if decided.start:
            self._start_tasks(service, ts, decided.start, now)
        counts = render.counts(service, ts, tasks)[1]
        steady = counts.stability == STEADY
        if steady != self._steady.get(ts.id, not steady):
            self._steady[ts.id] = steady
            with self.db.tx() as conn:
                fresh = [s for s in store.task_sets(conn, [service.id]) if s.id == ts.id]
                if fresh:
                    fresh[0].doc["stabilityStatusAt"] = now
                    store.save_task_set(conn, fresh[0])
                if steady:
                    store.add_event(
                        conn,
                        service.id,
                        f"(service {service.name}) has reached a steady state.",
                        now,
                    )
        return not steady or bool(decided.start or decided.stop)

    def _start_tasks(self, service: Service, ts: TaskSet, count: int, now: float) -> None:
        family, revision = names.task_definition_ref(ts.doc["taskDefinition"])
        with self.db.tx() as conn:
            found = store.get_task_definition(conn, family, revision)
            if found is None:
                return
            definition = found[3]
            created = []
            for _ in range(count):
                task = Task(
                    names.new_task_id(),
                    service.cluster,
                    service.id,
                    ts.id,
                    PROVISIONING,
                    "RUNNING",
                    now,
                    now,
                    launches.initial_doc(
                        ts.doc["taskDefinition"], definition, ts.doc.get("launchType", "EC2")
                    ),
                )
                store.insert_task(conn, task)
                created.append(task)
            listed = " ".join(f"(task {t.id})" for t in created)
            message = f"(service {service.name}) has started {count} tasks: {listed}."
            store.add_event(conn, service.id, message, now)
        for task in created:
            spec = launches.launch(task.id, family, int(revision or found[0]), definition)
            self.background(task.id, self._launch(task, spec, service))

    async def _launch(self, task: Task, spec: Any, service: Service) -> None:
        try:
            started = await asyncio.to_thread(self.capacity.start, spec)
        except LaunchFailed as exc:
            self.follower.fail(task.id, exc.stop_code, exc.reason, service, self.clock())
            return
        except Exception as exc:  # an engine answer the adapter did not expect
            log.exception("starting task %s failed", task.id)
            reason = f"CannotStartContainerError: {exc}"[:1000]
            self.follower.fail(task.id, "TaskFailedToStart", reason, service, self.clock())
            return

        def running(doc: dict[str, Any]) -> None:
            launches.record_start(doc, started)

        self.follower.update(task.id, running, last_status="PENDING")

    def background(self, task_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run a start or stop job; the task is left alone by ticks until it ends."""
        self.busy.add(task_id)

        async def job() -> None:
            try:
                async with self._slots:
                    await work
            except Exception:
                log.exception("ECS job for task %s failed", task_id)
            finally:
                self.busy.discard(task_id)
                self.recent.add(task_id)
                self._wake.set()

        handle = asyncio.get_running_loop().create_task(job())
        self._jobs.add(handle)
        handle.add_done_callback(self._jobs.discard)

    def _remove_orphans(self, observed: list[Observed], known: set[str]) -> None:
        stray: dict[int, list[str]] = {}
        for found in observed:
            claimed = found.task_id in known or found.task_id in self.busy
            if not claimed and found.task_id not in self.recent:
                stray.setdefault(found.endpoint, []).append(found.id)
        for endpoint, ids in stray.items():
            log.info("removing %d containers no task claims", len(ids))
            self.background(
                f"orphans-{endpoint}", asyncio.to_thread(self.capacity.remove, endpoint, ids)
            )

    async def _retire(
        self, services: list[Service], sets: list[TaskSet], tasks: list[Task]
    ) -> None:
        """Delete drained task sets; make drained services INACTIVE; for the ECS
        controller, drain older deployments once the primary one is steady."""
        now = self.clock()
        left = {t.task_set_id for t in tasks if t.last_status != STOPPED}
        with self.db.tx() as conn:
            for service in services:
                mine = [ts for ts in sets if ts.service_id == service.id]
                if service.status == "DRAINING":
                    if not any(ts.id in left for ts in mine):
                        for ts in mine:
                            store.delete_task_set(conn, ts.id)
                        service.status, service.updated = "INACTIVE", now
                        store.save_service(conn, service)
                        store.add_event(
                            conn, service.id, f"(service {service.name}) has been deleted.", now
                        )
                    continue
                if service.doc["deploymentController"]["type"] == "ECS":
                    self._roll_on(conn, service, mine, tasks, now)
                for ts in mine:
                    if ts.status == "DRAINING" and ts.id not in left:
                        store.delete_task_set(conn, ts.id)
                        self.backoff.pop(ts.id, None)
                        self._steady.pop(ts.id, None)

    def _roll_on(
        self, conn: Any, service: Service, mine: list[TaskSet], tasks: list[Task], now: float
    ) -> None:
        primary = [ts for ts in mine if ts.status == "PRIMARY"]
        if not primary or render.counts(service, primary[0], tasks)[1].stability != STEADY:
            return
        for ts in mine:
            if ts.status == "ACTIVE":
                ts.status, ts.updated = "DRAINING", now
                store.save_task_set(conn, ts)

    def note(self, service_id: str, message: str) -> None:
        with self.db.tx() as conn:
            if store.last_event(conn, service_id) != message:
                store.add_event(conn, service_id, message, self.clock())

    def _note_all(self, services: list[Service], message: str) -> None:
        for service in services:
            self.note(service.id, f"(service {service.name}) {message}")
