"""One resource at a time: create, update, replace, put back, delete, each persisted
before the provider is called (so a restart knows what may exist) and after it
returns, with the stack events CloudFormation writes for it.

Runs on the event loop; providers block, so they run in worker threads, and what they
note from there comes back to the loop to be stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import string
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from shipyard.stacks.providers.protocol import Abandons, Current, Outcome, Provider, Request
from shipyard.stacks.types import TYPES
from shipyard.store import stacks as store
from shipyard.store.db import Database

Row = dict[str, Any]
REPLACING = "Requested update requires the creation of a new physical resource; hence creating one."
_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class StackSteps:
    """The resource steps of one stack's running operation."""

    db: Database
    clock: Callable[[], float]
    providers: Mapping[str, Provider]
    stack_id: str
    stack_name: str
    rows: dict[str, Row]
    executor: Executor

    def event(
        self, logical_id: str, physical_id: str | None, kind: str, status: str, reason: str = ""
    ) -> None:
        with self.db.tx() as conn:
            store.add_event(
                conn,
                stack_id=self.stack_id,
                stack_name=self.stack_name,
                logical_id=logical_id,
                physical_id=physical_id,
                resource_type=kind,
                status=status,
                reason=reason or None,
                timestamp=self.clock(),
            )

    def _put(self, logical_id: str, **values: Any) -> None:
        values["updated"] = self.clock()
        with self.db.tx() as conn:
            store.put_resource(conn, self.stack_id, logical_id, **values)
        self.rows.setdefault(logical_id, {"logical_id": logical_id}).update(values)

    def _touch(self) -> int:
        with self.db.tx() as conn:
            return store.next_touch(conn, self.stack_id)

    def _note(self, logical_id: str) -> Callable[[str, dict[str, Any]], None]:
        loop = asyncio.get_running_loop()

        def record(reason: str, progress: dict[str, Any]) -> None:
            row = self.rows[logical_id]
            merged = {**(row.get("progress") or {}), **progress}
            self._put(logical_id, progress=merged)
            if reason:
                self.event(
                    logical_id, row.get("physical_id"), row["resource_type"], row["status"], reason
                )

        def note(reason: str, progress: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(record, reason, progress)

        return note

    def generated_name(self, logical_id: str, touch: int) -> str:
        """A stable physical name (a restart finds the same one): stack-logical-SUFFIX."""
        digest = hashlib.sha256(f"{self.stack_id}/{logical_id}/{touch}".encode()).digest()
        suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:12])
        return f"{self.stack_name}-{logical_id}"[:51] + "-" + suffix

    def _request(self, logical_id: str, kind: str, props: Row, policy: Row, name: str) -> Request:
        progress = dict(self.rows.get(logical_id, {}).get("progress") or {})
        return Request(logical_id, kind, name, props, policy, progress, self._note(logical_id))

    async def create(
        self,
        logical_id: str,
        kind: str,
        props: Row,
        policy: Row,
        deletion_policy: str,
        previous: Row | None = None,
    ) -> None:
        """Create the resource (a replacement when ``previous`` is the one it replaces)."""
        touch = self._touch()
        name = self.generated_name(logical_id, touch)
        name_property = TYPES[kind].name_property
        planned = (props.get(name_property) or name) if name_property else None
        self._put(
            logical_id,
            resource_type=kind,
            physical_id=planned,
            status="UPDATE_IN_PROGRESS" if previous else "CREATE_IN_PROGRESS",
            status_reason=None,
            properties=props,
            attributes={},
            deletion_policy=deletion_policy,
            touched=touch,
            previous=previous,
            progress={},
        )
        status = "UPDATE" if previous else "CREATE"
        self.event(
            logical_id, planned, kind, f"{status}_IN_PROGRESS", REPLACING if previous else ""
        )
        request = self._request(logical_id, kind, props, policy, name)
        outcome = await self._call(logical_id, status, lambda p: p.create(request))
        self._done(logical_id, status, outcome)

    async def resume(self, logical_id: str) -> None:
        """Carry on with a replacement the server was cut off in, from what its
        provider noted (a deployment to wait for again)."""
        row = self.rows[logical_id]
        kind = row["resource_type"]
        request = self._request(
            logical_id, kind, row["properties"], {}, str(row.get("physical_id") or "")
        )
        outcome = await self._call(logical_id, "UPDATE", lambda p: p.create(request))
        self._done(logical_id, "UPDATE", outcome)

    async def update(self, logical_id: str, props: Row, policy: Row, deletion_policy: str) -> None:
        row = self.rows[logical_id]
        current = _current(row)
        self._put(
            logical_id,
            status="UPDATE_IN_PROGRESS",
            status_reason=None,
            properties=props,
            deletion_policy=deletion_policy,
            touched=self._touch(),
            previous=snapshot(row),
            progress={},
        )
        self.event(logical_id, current.physical_id, row["resource_type"], "UPDATE_IN_PROGRESS")
        request = self._request(
            logical_id, row["resource_type"], props, policy, current.physical_id
        )
        outcome = await self._call(
            logical_id, "UPDATE", lambda p: p.update(request, current, False)
        )
        self._done(logical_id, "UPDATE", outcome)

    async def put_back(self, logical_id: str, policy: Row) -> None:
        """Return an updated or replaced resource to what ``previous`` holds (first
        ending what its provider noted it had started, e.g. a green deployment)."""
        row = self.rows[logical_id]
        before = row["previous"]
        kind = row["resource_type"]
        provider = self.providers[kind]
        progress = dict(row.get("progress") or {})
        if progress and isinstance(provider, Abandons):
            note = self._note(logical_id)
            await self._call(logical_id, "UPDATE", lambda _: provider.abandon(progress, note))
        if before["physical_id"] != row.get("physical_id") or before["resource_type"] != kind:
            await self.delete(logical_id, keep_row=True)
        else:
            self.event(logical_id, row.get("physical_id"), kind, "UPDATE_IN_PROGRESS")
            request = self._request(
                logical_id, kind, before["properties"], policy, before["physical_id"]
            )
            await self._call(logical_id, "UPDATE", lambda p: p.update(request, _current(row), True))
        self._put(
            logical_id,
            resource_type=before["resource_type"],
            physical_id=before["physical_id"],
            properties=before["properties"],
            attributes=before["attributes"],
            deletion_policy=before["deletion_policy"],
            status="UPDATE_COMPLETE",
            status_reason=None,
        )
        self.event(logical_id, before["physical_id"], before["resource_type"], "UPDATE_COMPLETE")

    async def delete(self, logical_id: str, keep_row: bool = False, row: Row | None = None) -> None:
        """Delete the resource (``row``: an earlier physical resource of it); a Retain
        deletion policy keeps it. The row goes unless ``keep_row``."""
        row = row if row is not None else self.rows[logical_id]
        kind, physical = row["resource_type"], row.get("physical_id")
        if row.get("deletion_policy") == "Retain":
            self.event(logical_id, physical, kind, "DELETE_SKIPPED")
        elif physical:
            self.event(logical_id, physical, kind, "DELETE_IN_PROGRESS")
            current = _current(row)
            await self._call(logical_id, "DELETE", lambda p: p.delete(current), kind)
            self.event(logical_id, physical, kind, "DELETE_COMPLETE")
        if not keep_row:
            with self.db.tx() as conn:
                store.delete_resource(conn, self.stack_id, logical_id)
            self.rows.pop(logical_id, None)

    async def _call(
        self, logical_id: str, status: str, work: Callable[[Provider], Any], kind: str = ""
    ) -> Any:
        provider = self.providers[kind or self.rows[logical_id]["resource_type"]]
        try:
            # Not the loop's default executor: a provider may block for a whole
            # deployment, and the server's own steps (hook invocations, reports) must
            # never queue behind it.
            return await asyncio.get_running_loop().run_in_executor(self.executor, work, provider)
        except Exception as exc:
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            row = self.rows.get(logical_id)
            if row is not None and logical_id in self.rows and status != "DELETE":
                self._put(logical_id, status=f"{status}_FAILED", status_reason=reason)
            self.event(
                logical_id,
                row.get("physical_id") if row else None,
                kind or (row or {}).get("resource_type", ""),
                f"{status}_FAILED",
                reason,
            )
            raise StepFailed(logical_id, reason) from exc

    def _done(self, logical_id: str, status: str, outcome: Outcome) -> None:
        self._put(
            logical_id,
            physical_id=outcome.physical_id,
            attributes=outcome.attributes,
            status=f"{status}_COMPLETE",
        )
        self.event(
            logical_id,
            outcome.physical_id,
            self.rows[logical_id]["resource_type"],
            f"{status}_COMPLETE",
        )


class StepFailed(Exception):
    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(f"{logical_id}: {reason}")
        self.logical_id = logical_id
        self.reason = reason


def _current(row: Row) -> Current:
    return Current(
        str(row.get("physical_id") or ""),
        dict(row.get("properties") or {}),
        dict(row.get("attributes") or {}),
    )


def snapshot(row: Row) -> Row:
    """What ``put_back`` returns the resource to."""
    return {
        key: row.get(key)
        for key in ("resource_type", "physical_id", "properties", "attributes", "deletion_policy")
    }
