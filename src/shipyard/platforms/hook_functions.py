"""Hook events carried out as functions, for every platform whose hooks are functions
(Lambda, ECS; reference aws-services.md §3.1): the appspec's function is invoked with
``{DeploymentId, LifecycleEventHookExecutionId}``, and its
PutLifecycleEventHookExecutionStatus becomes a ``HookReported`` input. Unlike CodeDeploy
(an asynchronous invocation, retried on error, and the event's timeout as the only
end of a function that never reports), the invocation waits for the function: one that
fails (raises, crashes, times out) before reporting fails its event at once.

The execution id is stored before the invocation (``store.hook_executions``) so the
function's report finds it, on any replica. No report by the event's deadline fails
the event (the engine's Tick). An event without a hook function succeeds at once.

``Background`` runs a platform's steps off the request path: as tasks on the server's
loop, each failure logged, never collected early.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from shipyard.engine.messages import Acknowledged, HookReported, Input
from shipyard.errors import ShipyardError
from shipyard.store import hook_executions
from shipyard.store.db import Database

Apply = Callable[[str, Input], object]
# Invokes (function, deployment id, execution id) and waits for the function; blocks, so
# it runs in a worker thread. Returns the function's error if it failed (None if it ran
# or no verdict came); raises a ShipyardError when it could not be invoked.
Invoke = Callable[[str, str, str], str | None]


class HookFunctions:
    def __init__(
        self, apply: Apply, db: Database, clock: Callable[[], float], invoker: Callable[[], Invoke]
    ) -> None:
        self._apply = apply
        self._db = db
        self._clock = clock
        self._invoker = invoker

    async def run(
        self, deployment_id: str, target_id: str, event: str, function: str | None
    ) -> None:
        if function is None:
            self._apply(deployment_id, HookReported(target_id, event, succeeded=True))
            return
        execution_id = str(uuid.uuid4())
        with self._db.tx() as conn:
            hook_executions.add(conn, execution_id, deployment_id, target_id, event, self._clock())
        self._apply(deployment_id, Acknowledged(target_id, event))
        try:
            invoke = await asyncio.to_thread(self._invoker)
            error = await asyncio.to_thread(invoke, function, deployment_id, execution_id)
        except ShipyardError as exc:
            self._fail(
                deployment_id,
                target_id,
                event,
                execution_id,
                f"The {event} hook function could not be invoked: {exc}",
            )
            return
        if error is not None:
            # It failed without reporting (a report first stands): the event fails now,
            # not when its timeout runs out.
            self._fail(
                deployment_id,
                target_id,
                event,
                execution_id,
                f"The {event} hook function {function} failed: {error}",
            )

    def _fail(
        self, deployment_id: str, target_id: str, event: str, execution_id: str, message: str
    ) -> None:
        with self._db.tx() as conn:
            reported = hook_executions.report(conn, execution_id, "Failed")
        if reported:
            self._apply(deployment_id, HookReported(target_id, event, False, message))

    def awaiting_report(self, deployment_id: str, target_id: str, event: str) -> bool:
        """Whether the hook was invoked and its report is still awaited (after a
        restart it must not be invoked twice)."""
        with self._db.tx() as conn:
            return hook_executions.pending_for(conn, deployment_id, target_id, event) is not None


class Background:
    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
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
            self._log.exception("deployment step failed")
