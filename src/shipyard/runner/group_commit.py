"""Group commit: the agents' results that arrive in one event-loop turn share one
transaction.

While the server is busy, many completions wait in the loop's ready queue at once.
Each used to cost a transaction of its own: the deployment's row locked and read, its
version bumped, a commit. Queued here, they run one after the other in a single
transaction at the end of the turn: the lock, the version bump and the commit are paid
once per batch, and each completion still steps the engine in order, exactly as if it
had its own transaction.

A batch is all or nothing. If any of its work raises, the transaction rolls back
(with it every state the runner cached from it, see ``Runner.apply_in``) and each
piece of work runs again alone, in a transaction of its own: an error reaches only the
request that caused it, and nothing is counted twice since nothing was committed.
Nobody learns an answer before its commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import Connection

from shipyard.runner.after_commit import AfterCommit
from shipyard.store.db import Database
from shipyard.store.dialects import lost_a_lock_cycle

log = logging.getLogger("shipyard.runner")

T = TypeVar("T")

# PostgreSQL aborts one transaction of a lock cycle (replicas locking the same
# deployments in another order); that one is run again rather than answered 503. A
# 30-minute soak of three replicas saw about four such cycles a minute.
DEADLOCK_ATTEMPTS = 3
Work = Callable[[Connection, AfterCommit], T]


class GroupCommit(Generic[T]):
    def __init__(self, db: Database, after_commit: Callable[[AfterCommit], None]) -> None:
        self.db = db
        self.after_commit = after_commit
        self._queue: list[tuple[Work[T], asyncio.Future[T]]] = []
        self.batches = 0  # transactions run (for tests and benchmarks)

    async def run(self, work: Work[T]) -> T:
        """Run ``work`` in the transaction of this turn's batch; its result once
        that transaction has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append((work, future))
        if len(self._queue) == 1:
            # After every task already ready in this turn: they may queue work too.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        if len(batch) > 1 and self._together(batch):
            return
        for work, future in batch:
            self._alone(work, future)

    def _together(self, batch: list[tuple[Work[T], asyncio.Future[T]]]) -> bool:
        """Run the batch in one transaction; False (nothing committed) if any work raised."""
        after = AfterCommit()
        try:
            with self.db.tx() as conn:
                results = [work(conn, after) for work, _ in batch]
        except Exception:
            log.debug("a batch of %d rolled back; running each alone", len(batch), exc_info=True)
            return False
        self.batches += 1
        self._finish(after)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        return True

    def _alone(self, work: Work[T], future: asyncio.Future[T]) -> None:
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            after = AfterCommit()
            try:
                with self.db.tx() as conn:
                    result = work(conn, after)
                break
            except Exception as exc:
                if attempt < DEADLOCK_ATTEMPTS and lost_a_lock_cycle(exc):
                    continue  # rolled back whole: nothing of it was committed
                if not future.done():
                    future.set_exception(exc)
                return
        self.batches += 1
        self._finish(after)
        if not future.done():
            future.set_result(result)

    def _finish(self, after: AfterCommit) -> None:
        # Committed: the answers stand whatever happens here (as a request that
        # committed, then failed to wake an agent, would have been answered).
        try:
            self.after_commit(after)
        except Exception:
            log.exception("after a group commit")
