"""The ECS platform's server-run steps (a ``ServerSteps``), off the request path, each
result fed back to the engine as an input:

- the five hook events invoke the appspec's hook functions (``hook_functions``);
- Install creates the replacement task set and waits until it is steady, then answers
  ``Completed``; AllowTestTraffic points the test listener at it;
- a shift sets the production listener's weights and answers ``TrafficShifted``; a
  shift to 0 is the way back: both listeners to the original at once and the
  replacement deleted (an Install still waiting for it gives up first);
- retire makes the replacement primary and deletes the original, answering ``Retired``.

The calls on one service are made one at a time, in the order they were decided.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from shipyard.engine.messages import Acknowledged, Completed, Input, Retired, TrafficShifted
from shipyard.engine.state import StoredDeployment
from shipyard.errors import ShipyardError
from shipyard.platforms.ecs_ import appspec_of, target_of
from shipyard.platforms.ecs_appspec import HOOK_EVENTS
from shipyard.platforms.ecs_backend import EcsServices
from shipyard.platforms.ecs_target import TaskSetInfo
from shipyard.platforms.hook_functions import Background, HookFunctions, Invoke
from shipyard.store.db import Database

log = logging.getLogger("shipyard.ecs")

Apply = Callable[[str, Input], object]
INSTALL = "Install"
TEST_TRAFFIC = "AllowTestTraffic"
SHIFT_EVENT = "AllowTraffic"
RETIRE = "Retire"  # not a lifecycle event: the original's deletion after the wait
# Calls on the backend (they block: run in a worker thread).
Work = Callable[[EcsServices], None]


class EcsSteps:
    def __init__(
        self,
        apply: Apply,
        db: Database,
        clock: Callable[[], float],
        backend: Callable[[], EcsServices],
        invoker: Callable[[], Invoke],
        install_seconds: float,
    ) -> None:
        self._apply = apply
        self._backend = backend
        self._services: EcsServices | None = None
        self._hooks = HookFunctions(apply, db, clock, invoker)
        self._background = Background(log)
        self._install_seconds = install_seconds
        self._locks: dict[str, asyncio.Lock] = {}
        # Deployments being taken back: an Install waiting for steadiness gives up.
        self._withdrawn: set[str] = set()
        # (deployment, target, event) this process has started: ``resume`` leaves those.
        self._started: set[tuple[str, str, str]] = set()

    def services(self) -> EcsServices:
        """The backend's clients, built on first use (the server must be answering for
        the embedded service)."""
        if self._services is None:
            self._services = self._backend()
        return self._services

    # ---- ServerSteps --------------------------------------------------------------

    def run(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        deployment_id = stored.state.deployment_id
        self._started.add((deployment_id, target_id, event))
        if event == INSTALL:
            self._background.start(self._install(stored, target_id))
        elif event == TEST_TRAFFIC:
            self._background.start(self._test_traffic(stored, target_id))
        else:
            function = appspec_of(stored).hooks.get(event) if event in HOOK_EVENTS else None
            self._background.start(self._hooks.run(deployment_id, target_id, event, function))

    def shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        self._started.add((stored.state.deployment_id, target_id, SHIFT_EVENT))
        if weight == 0:
            self._withdrawn.add(stored.state.deployment_id)
            self._background.start(self._restore(stored, target_id))
        else:
            self._background.start(self._shift(stored, target_id, weight))

    def retire(self, stored: StoredDeployment, target_id: str) -> None:
        self._started.add((stored.state.deployment_id, target_id, RETIRE))
        self._background.start(self._retire(stored, target_id))

    def restore(self, stored: StoredDeployment, target_id: str) -> None:
        """Never asked: a service's traffic goes back by a shift to 0."""

    def dispatched(self, target_id: str) -> None:
        """Nothing to track: calls on a service are ordered by its lock."""

    def resume(self, stored: StoredDeployment) -> None:
        """After a restart: re-apply the weight in force of a shift under way, carry on
        with Install (it finds its task set by the deployment id), test traffic and the
        retirement; invoke a hook again only if it was never invoked."""
        state = stored.state
        if state.retiring:
            for target_id in state.targets:
                if (state.deployment_id, target_id, RETIRE) not in self._started:
                    self.retire(stored, target_id)
            return
        for target in state.targets.values():
            current = target.current()
            key = (state.deployment_id, target.target_id, current.name if current else "")
            if not target.in_flight or current is None or key in self._started:
                continue
            if current.name == SHIFT_EVENT:
                self.shift(stored, target.target_id, state.shift_weight)
            elif current.name in (INSTALL, TEST_TRAFFIC) or not self._hooks.awaiting_report(*key):
                self.run(stored, target.target_id, current.name)

    def task_sets(self, stored: StoredDeployment) -> list[TaskSetInfo]:
        """The service's task sets now (blocks: call it in a worker thread)."""
        return self.services().describe(target_of(stored), stored.state.deployment_id)

    # ---- the work -----------------------------------------------------------------

    async def _install(self, stored: StoredDeployment, target_id: str) -> None:
        deployment_id = stored.state.deployment_id
        spec, target = appspec_of(stored), target_of(stored)
        deadline = time.monotonic() + self._install_seconds

        def wanted() -> bool:
            return deployment_id not in self._withdrawn

        def work(services: EcsServices) -> None:
            services.install(target, spec, deployment_id, wanted, deadline)

        await self._event(stored, target_id, INSTALL, work)

    async def _test_traffic(self, stored: StoredDeployment, target_id: str) -> None:
        target, deployment_id = target_of(stored), stored.state.deployment_id
        await self._event(
            stored, target_id, TEST_TRAFFIC, lambda s: s.route_test_traffic(target, deployment_id)
        )

    async def _event(
        self, stored: StoredDeployment, target_id: str, event: str, work: Work
    ) -> None:
        deployment_id = stored.state.deployment_id
        self._apply(deployment_id, Acknowledged(target_id, event))
        error = await self._on_service(target_id, work)
        if error is not None:
            diagnostics = {
                "errorCode": "UnknownError",
                "scriptName": "",
                "message": f"{event}: {error}",
                "logTail": "",
            }
            self._apply(deployment_id, Completed(target_id, event, False, diagnostics))
        elif deployment_id not in self._withdrawn:
            done = {"errorCode": "Success", "scriptName": "", "message": "", "logTail": ""}
            self._apply(deployment_id, Completed(target_id, event, True, done))

    async def _shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        target, deployment_id = target_of(stored), stored.state.deployment_id
        error = await self._on_service(
            target_id, lambda s: s.set_weight(target, deployment_id, weight)
        )
        shifted = TrafficShifted(target_id, weight, error is None, error or "")
        self._apply(deployment_id, shifted)

    async def _restore(self, stored: StoredDeployment, target_id: str) -> None:
        target, deployment_id = target_of(stored), stored.state.deployment_id
        error = await self._on_service(target_id, lambda s: s.restore(target, deployment_id))
        if error is not None:
            log.error("deployment %s: traffic could not be put back: %s", deployment_id, error)
        else:
            log.info("deployment %s: traffic back on the original task set", deployment_id)

    async def _retire(self, stored: StoredDeployment, target_id: str) -> None:
        target, deployment_id = target_of(stored), stored.state.deployment_id
        error = await self._on_service(target_id, lambda s: s.retire(target, deployment_id))
        self._apply(deployment_id, Retired(target_id, error is None, error or ""))

    async def _on_service(self, target_id: str, work: Work) -> str | None:
        """``work`` on the backend in a worker thread, one at a time per service, in
        the order asked; what went wrong, if anything."""
        async with self._lock(target_id):
            try:
                services = await asyncio.to_thread(self.services)
                await asyncio.to_thread(work, services)
            except ShipyardError as exc:
                return str(exc)
        return None

    def _lock(self, target_id: str) -> asyncio.Lock:
        return self._locks.setdefault(target_id, asyncio.Lock())
