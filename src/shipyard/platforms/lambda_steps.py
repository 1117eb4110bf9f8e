"""The Lambda platform's server-run steps (a ``ServerSteps``): hook functions and the
alias shift, off the request path, each result fed back to the engine as an input.

- A hook event (BeforeAllowTraffic, AfterAllowTraffic) invokes the appspec's hook
  function asynchronously with ``{DeploymentId, LifecycleEventHookExecutionId}``. The
  execution id is stored first (``store.hook_executions``) so that the function's
  PutLifecycleEventHookExecutionStatus finds it, on any replica; that call becomes a
  ``HookReported`` input. No report by the event's deadline (``hook_timeout``) fails the
  event (the engine's Tick). An event without a hook succeeds at once.
- A shift sets the alias's weights (``LambdaAliases.set_weight``) and answers
  ``TrafficShifted``. Shifts of one alias are applied in the order they were decided.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from shipyard.engine.messages import Acknowledged, HookReported, Input, TrafficShifted
from shipyard.engine.state import StoredDeployment
from shipyard.platforms.lambda_ import appspec_of
from shipyard.platforms.lambda_appspec import HOOK_EVENTS
from shipyard.platforms.lambda_backend import LambdaAliases, LambdaBackendError
from shipyard.store import hook_executions
from shipyard.store.db import Database

log = logging.getLogger("shipyard.lambda")

Apply = Callable[[str, Input], object]
SHIFT_EVENT = "AllowTraffic"


class LambdaSteps:
    def __init__(
        self,
        apply: Apply,
        db: Database,
        clock: Callable[[], float],
        backend: Callable[[], LambdaAliases],
    ) -> None:
        self._apply = apply
        self._db = db
        self._clock = clock
        self._backend = backend
        self._aliases: LambdaAliases | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # (deployment, target, event) this process has started: ``resume`` (which the
        # sweeper calls every second) leaves those alone.
        self._started: set[tuple[str, str, str]] = set()

    def aliases(self) -> LambdaAliases:
        """The backend's client, built on first use (the server must be answering for
        the embedded host)."""
        if self._aliases is None:
            self._aliases = self._backend()
        return self._aliases

    # ---- ServerSteps --------------------------------------------------------------

    def run(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        self._started.add((stored.state.deployment_id, target_id, event))
        self._background(self._hook(stored, target_id, event))

    def shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        self._started.add((stored.state.deployment_id, target_id, SHIFT_EVENT))
        self._background(self._shift(stored, target_id, weight))

    def restore(self, stored: StoredDeployment, target_id: str) -> None:
        """Never asked: an alias's traffic goes back by a shift to 0."""

    def dispatched(self, target_id: str) -> None:
        """Nothing to track: shifts of an alias are ordered by its lock."""

    def resume(self, stored: StoredDeployment) -> None:
        """After a restart: re-apply the weight in force of a shift under way (its
        answer completes the event at 100); invoke a hook again only if its execution id
        was never stored (a stored one still awaits its report, or its deadline)."""
        state = stored.state
        for target in state.targets.values():
            current = target.current()
            key = (state.deployment_id, target.target_id, current.name if current else "")
            if not target.in_flight or current is None or key in self._started:
                continue
            if current.name == SHIFT_EVENT:
                self.shift(stored, target.target_id, state.shift_weight)
                continue
            with self._db.tx() as conn:
                waiting = hook_executions.pending_for(
                    conn, state.deployment_id, target.target_id, current.name
                )
            if waiting is None:
                self.run(stored, target.target_id, current.name)

    # ---- the work -----------------------------------------------------------------

    async def _hook(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        deployment_id = stored.state.deployment_id
        function = appspec_of(stored).hooks.get(event) if event in HOOK_EVENTS else None
        if function is None:
            self._apply(deployment_id, HookReported(target_id, event, succeeded=True))
            return
        execution_id = str(uuid.uuid4())
        with self._db.tx() as conn:
            hook_executions.add(conn, execution_id, deployment_id, target_id, event, self._clock())
        self._apply(deployment_id, Acknowledged(target_id, event))
        try:
            aliases = await asyncio.to_thread(self.aliases)
            await asyncio.to_thread(aliases.invoke_hook, function, deployment_id, execution_id)
        except LambdaBackendError as exc:
            with self._db.tx() as conn:
                reported = hook_executions.report(conn, execution_id, "Failed")
            if reported:
                message = f"The {event} hook function could not be invoked: {exc}"
                self._apply(deployment_id, HookReported(target_id, event, False, message))

    async def _shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        deployment_id = stored.state.deployment_id
        spec = appspec_of(stored)
        lock = self._locks.setdefault(target_id, asyncio.Lock())
        async with lock:
            try:
                aliases = await asyncio.to_thread(self.aliases)
                await asyncio.to_thread(aliases.set_weight, spec, weight)
            except LambdaBackendError as exc:
                self._apply(deployment_id, TrafficShifted(target_id, weight, False, str(exc)))
                return
        self._apply(deployment_id, TrafficShifted(target_id, weight, True))

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the server's loop (tools, tests): run it here
            asyncio.run(work)
            return
        task = loop.create_task(self._logged(work))
        self._tasks.add(task)  # a reference, so the task is not collected early
        task.add_done_callback(self._tasks.discard)

    async def _logged(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("Lambda deployment step failed")
