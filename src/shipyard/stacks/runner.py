"""Stack operations off the request path: a server worker that runs every stack whose
status is ``*_IN_PROGRESS``, phase by phase, each phase's end persisted.

Phases (CloudFormation's statuses): CREATE → ROLLBACK (delete what was created) or
CREATE_FAILED when rollback is disabled; UPDATE → UPDATE_COMPLETE_CLEANUP (delete what
was replaced or removed) or UPDATE_ROLLBACK (put back what was touched, newest first) →
UPDATE_ROLLBACK_COMPLETE_CLEANUP; DELETE (reverse creation order).

At start, an operation the server was running when it died is resumed where its status
says: a create or update that was underway is rolled back (a provider call may have
been cut anywhere), rollbacks, cleanups and deletes carry on. One server runs a stack's
operation at a time (replicas on PostgreSQL are not coordinated for stacks yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shipyard.stacks import bluegreen, existing, intrinsics
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.existing import Resources, deletion_order
from shipyard.stacks.green_update import green_hook, green_policy, waiting_deployment
from shipyard.stacks.intrinsics import Scope
from shipyard.stacks.prepared import Prepared, prepare
from shipyard.stacks.providers.protocol import Provider
from shipyard.stacks.steps import StackSteps, StepFailed, snapshot
from shipyard.stacks.types import TYPES
from shipyard.store import stacks as store
from shipyard.store.db import Database

log = logging.getLogger("shipyard.stacks")

Row = dict[str, Any]
POLL_SECONDS = 1.0
# Provider calls run on their own threads (one stack step at a time per stack).
PROVIDER_THREADS = 4
RESTARTED = "The server restarted while this operation ran"
# What an interrupted operation becomes at start.
ON_RESTART = {
    "CREATE_IN_PROGRESS": "ROLLBACK_IN_PROGRESS",
    "UPDATE_IN_PROGRESS": "UPDATE_ROLLBACK_IN_PROGRESS",
}


class StackRunner:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        region: str,
        providers: Callable[[], Mapping[str, Provider]],
    ) -> None:
        self.db = db
        self.clock = clock
        self.region = region
        self._providers_factory = providers
        self._providers: Mapping[str, Provider] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(PROVIDER_THREADS, thread_name_prefix="stack-step")

    # -- the worker ------------------------------------------------------------------

    def start(self) -> None:
        self._wake = asyncio.Event()
        with self.db.tx() as conn:
            for stack in store.stacks_in_progress(conn):
                after = ON_RESTART.get(stack["status"])
                if after == "ROLLBACK_IN_PROGRESS" and stack["disable_rollback"]:
                    after = "CREATE_FAILED"
                waiting = waiting_deployment(store.resources(conn, stack["stack_id"]))
                if after is not None and stack["status"] == "UPDATE_IN_PROGRESS" and waiting:
                    # A green deployment carries on without the server: wait for it
                    # again (a rollback now would race it to its end).
                    again = f"{RESTARTED}; waiting again for CodeDeploy deployment {waiting}"
                    self._status(conn, stack, stack["status"], again)
                elif after is not None:
                    self._status(conn, stack, after, RESTARTED)
        self._loop_task = asyncio.create_task(self._loop(), name="stacks")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._executor.shutdown(wait=False, cancel_futures=True)

    def kick(self) -> None:
        """A stack operation was asked for: look now rather than at the next poll."""
        self._wake.set()

    def _forget(self, task: asyncio.Task[None]) -> None:
        for stack_id, running in list(self._running.items()):
            if running is task:
                del self._running[stack_id]

    async def _loop(self) -> None:
        while True:
            with self.db.tx() as conn:
                waiting = [s["stack_id"] for s in store.stacks_in_progress(conn)]
            for stack_id in waiting:
                if stack_id not in self._running:
                    task = asyncio.create_task(self._run(stack_id), name=f"stack {stack_id}")
                    self._running[stack_id] = task
                    task.add_done_callback(self._forget)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    # -- one stack's operation --------------------------------------------------------

    async def _run(self, stack_id: str) -> None:
        while True:
            with self.db.tx() as conn:
                stack = store.find_stack(conn, stack_id)
            if stack is None:
                return
            phase = _PHASES.get(stack["status"])
            if phase is None:
                return
            try:
                await phase(self, stack)
            except Exception:
                log.exception("stack %s: phase %s failed", stack["name"], stack["status"])
                with self.db.tx() as conn:
                    failed = (
                        stack["status"]
                        .replace("IN_PROGRESS", "FAILED")
                        .replace("_COMPLETE_CLEANUP", "")
                    )
                    self._status(
                        conn, stack, failed, "Internal failure; the server log has details"
                    )
                return

    def _steps(self, stack: Row) -> StackSteps:
        if self._providers is None:
            self._providers = self._providers_factory()
        with self.db.tx() as conn:
            rows = store.resources(conn, stack["stack_id"])
        return StackSteps(
            self.db,
            self.clock,
            self._providers,
            stack["stack_id"],
            stack["name"],
            rows,
            self._executor,
        )

    def _prepared(self, stack: Row, body: str, values: Mapping[str, str]) -> Prepared:
        return prepare(body, values, self.region, stack["name"], stack["stack_id"])

    def _status(self, conn: Any, stack: Row, status: str, reason: str = "", **values: Any) -> None:
        store.set_status(conn, stack, status, reason or None, self.clock(), **values)
        if status.endswith("_COMPLETE") or status.endswith("_FAILED"):
            # The operation is over: no resource is touched or has a previous self.
            store.settle_resources(conn, stack["stack_id"])
            self._end_change_set(conn, stack, status)

    def _end_change_set(self, conn: Any, stack: Row, status: str) -> None:
        if not stack.get("change_set_id"):
            return
        done = status in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE")
        found = store.find_change_set(conn, stack["change_set_id"], None)
        if found is not None and found["execution_status"] == "EXECUTE_IN_PROGRESS":
            store.update_change_set(
                conn,
                stack["change_set_id"],
                execution_status="EXECUTE_COMPLETE" if done else "EXECUTE_FAILED",
            )

    async def _apply(self, stack: Row, failed: str, succeeded: str) -> None:
        """Create or update every resource of the stack's template, in creation order."""
        steps = self._steps(stack)
        try:
            prepared = self._prepared(stack, stack["template_body"], stack["parameters"])
            green = None
            if stack["status"].startswith("UPDATE"):
                resolve = functools.partial(intrinsics.resolve, scope=_scope(steps, prepared))
                green, reason = green_hook(prepared, steps.rows, resolve)
                if green is not None:
                    with self.db.tx() as conn:
                        self._status(conn, stack, stack["status"], reason)
            await self._apply_resources(steps, prepared, green)
        except (StepFailed, TemplateError) as exc:
            logical = exc.logical_id if isinstance(exc, StepFailed) else ""
            verb = "create" if stack["status"].startswith("CREATE") else "update"
            reason = (
                f"The following resource(s) failed to {verb}: [{logical}]."
                if isinstance(exc, StepFailed)
                else exc.message
            )
            if stack["disable_rollback"] and failed.startswith("ROLLBACK"):
                failed = "CREATE_FAILED"
            with self.db.tx() as conn:
                self._status(conn, stack, failed, reason)
            return
        with self.db.tx() as conn:
            self._status(conn, stack, succeeded)

    async def _apply_resources(
        self, steps: StackSteps, prepared: Prepared, green: bluegreen.Hook | None = None
    ) -> None:
        live = prepared.live
        for logical_id in prepared.order:
            definition = live[logical_id]
            scope = _scope(steps, prepared)
            try:
                props = intrinsics.resolve(definition.get("Properties") or {}, scope)
                policy = intrinsics.resolve(definition.get("UpdatePolicy") or {}, scope)
            except TemplateError as exc:
                steps.event(logical_id, None, definition["Type"], "CREATE_FAILED", exc.message)
                raise StepFailed(logical_id, exc.message) from exc
            kind = definition["Type"]
            deletion_policy = definition.get("DeletionPolicy", "Delete")
            row = steps.rows.get(logical_id)
            if row is not None and waiting_deployment({logical_id: row}):
                await steps.resume(logical_id)
            elif green is not None and row is not None and logical_id == green.blue_task_set:
                # The green task set: made by the CodeDeploy deployment, not CreateTaskSet.
                resolve = functools.partial(intrinsics.resolve, scope=scope)
                policy = {
                    **policy,
                    **green_policy(green, steps.stack_name, steps.rows, props, resolve),
                }
                await steps.create(logical_id, kind, props, policy, deletion_policy, snapshot(row))
            elif row is None:
                await steps.create(logical_id, kind, props, policy, deletion_policy)
            elif row["resource_type"] != kind or TYPES[kind].needs_replacement(
                row["properties"], props
            ):
                await steps.create(logical_id, kind, props, policy, deletion_policy, snapshot(row))
            elif row["properties"] != props:
                await steps.update(logical_id, props, policy, deletion_policy)

    async def _create(self, stack: Row) -> None:
        await self._apply(stack, "ROLLBACK_IN_PROGRESS", "CREATE_COMPLETE")
        await self._outputs_if(stack, "CREATE_COMPLETE")

    async def _update(self, stack: Row) -> None:
        await self._apply(
            stack, "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        )

    async def _cleanup(self, stack: Row) -> None:
        """After an update: delete the resources it replaced or removed."""
        steps = self._steps(stack)
        prepared = self._prepared(stack, stack["template_body"], stack["parameters"])
        live = prepared.live
        for logical_id, row in sorted(
            steps.rows.items(), key=lambda item: -(item[1]["touched"] or 0)
        ):
            before = row.get("previous")
            if before and before["physical_id"] != row.get("physical_id"):
                with contextlib.suppress(StepFailed):
                    await steps.delete(logical_id, keep_row=True, row=before)
        for logical_id in deletion_order(stack, steps.rows):
            if logical_id not in live:
                with contextlib.suppress(StepFailed):
                    await steps.delete(logical_id)
        with self.db.tx() as conn:
            self._status(conn, stack, "UPDATE_COMPLETE", previous=None)
        await self._outputs_if(stack, "UPDATE_COMPLETE")

    async def _roll_back_update(self, stack: Row) -> None:
        steps = self._steps(stack)
        previous = stack.get("previous") or {}
        policies = self._policies(stack, previous)
        touched = sorted(
            (row for row in steps.rows.values() if row.get("touched") is not None),
            key=lambda row: -int(row["touched"]),
        )
        try:
            for row in touched:
                logical_id = row["logical_id"]
                if row.get("previous") is None:
                    await steps.delete(logical_id)
                else:
                    await steps.put_back(logical_id, policies.get(logical_id, {}))
        except StepFailed as exc:
            with self.db.tx() as conn:
                self._status(
                    conn,
                    stack,
                    "UPDATE_ROLLBACK_FAILED",
                    f"Failed to roll back {exc.logical_id}: {exc.reason}",
                )
            return
        with self.db.tx() as conn:
            self._status(
                conn,
                stack,
                "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
                stack.get("status_reason") or "",
                template_body=previous.get("template_body", stack["template_body"]),
                parameters=previous.get("parameters", stack["parameters"]),
            )

    def _policies(self, stack: Row, previous: Row) -> dict[str, Row]:
        """Update policies of the template rolled back to (none when it cannot be read)."""
        try:
            prepared = self._prepared(stack, previous["template_body"], previous["parameters"])
        except (KeyError, TemplateError):
            return {}
        return {
            logical_id: definition.get("UpdatePolicy") or {}
            for logical_id, definition in prepared.live.items()
        }

    async def _finish_rollback(self, stack: Row) -> None:
        with self.db.tx() as conn:
            self._status(
                conn,
                stack,
                "UPDATE_ROLLBACK_COMPLETE",
                stack.get("status_reason") or "",
                previous=None,
            )
        await self._outputs_if(stack, "UPDATE_ROLLBACK_COMPLETE")

    async def _roll_back_create(self, stack: Row) -> None:
        steps = self._steps(stack)
        order = sorted(steps.rows, key=lambda name: -int(steps.rows[name].get("touched") or 0))
        failed = await self._delete_each(steps, order)
        with self.db.tx() as conn:
            if failed:
                self._status(
                    conn, stack, "ROLLBACK_FAILED", f"Failed to delete [{', '.join(failed)}]"
                )
            else:
                self._status(conn, stack, "ROLLBACK_COMPLETE", stack.get("status_reason") or "")

    async def _delete(self, stack: Row) -> None:
        steps = self._steps(stack)
        failed = await self._delete_each(steps, deletion_order(stack, steps.rows))
        with self.db.tx() as conn:
            if failed:
                self._status(
                    conn,
                    stack,
                    "DELETE_FAILED",
                    f"The following resource(s) failed to delete: [{', '.join(failed)}].",
                )
            else:
                self._status(conn, stack, "DELETE_COMPLETE", deleted=self.clock())

    async def _delete_each(self, steps: StackSteps, order: list[str]) -> list[str]:
        failed = []
        for logical_id in order:
            try:
                await steps.delete(logical_id)
            except StepFailed:
                failed.append(logical_id)
        return failed

    async def _outputs_if(self, stack: Row, status: str) -> None:
        with self.db.tx() as conn:
            current = store.find_stack(conn, stack["stack_id"])
            if current is None or current["status"] != status:
                return
            rows = store.resources(conn, stack["stack_id"])
        try:
            prepared = self._prepared(current, current["template_body"], current["parameters"])
            resolved = existing.outputs(prepared, rows)
        except TemplateError as exc:
            log.warning("stack %s: outputs not resolved: %s", stack["name"], exc.message)
            return
        with self.db.tx() as conn:
            store.update_stack(conn, stack["stack_id"], outputs=resolved)


def _scope(steps: StackSteps, prepared: Prepared) -> Scope:
    """What the template's intrinsics resolve against: the resources as they are now."""
    return Scope(
        prepared.parameters,
        prepared.conditions,
        Resources(steps.rows),
        prepared.template.mappings,
    )


_PHASES = {
    "CREATE_IN_PROGRESS": StackRunner._create,
    "UPDATE_IN_PROGRESS": StackRunner._update,
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": StackRunner._cleanup,
    "UPDATE_ROLLBACK_IN_PROGRESS": StackRunner._roll_back_update,
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": StackRunner._finish_rollback,
    "ROLLBACK_IN_PROGRESS": StackRunner._roll_back_create,
    "DELETE_IN_PROGRESS": StackRunner._delete,
}
