"""The function host: warm workers per function version, concurrency, timeouts, events.

``invoke`` runs one invocation on an idle worker of that exact version and revision, or
starts one (a cold start). Beyond the host's or the function's concurrency limit it
refuses at once (``Throttled``, Lambda's 429), as Lambda does for synchronous calls;
asynchronous (``Event``) invocations wait for room instead and are retried twice on a
function error, as Lambda retries them.

Each worker has its own access key (principal kind ``function``), issued when it starts
and revoked when it stops; a worker is retired once its key is older than
``credential_seconds``, and keys older than that plus the longest timeout are swept every
minute, so a key outlives its worker by little even if the server died. An idle worker is
stopped after ``idle_seconds``. Memory sizes are reported, not enforced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.functions.code import unpack
from shipyard.functions.names import MAX_TIMEOUT
from shipyard.functions.runtime_api import Invocation
from shipyard.functions.worker import FunctionSpec, Launch, Outcome, Worker, start_worker
from shipyard.store import credentials
from shipyard.store.db import Database

log = logging.getLogger("shipyard.functions")

EVENT_RETRIES = 2
MAX_QUEUED_EVENTS = 10_000
MAX_SPECS = 1024  # FunctionSpecs kept by revision


class Throttled(Exception):
    """No room for another concurrent invocation."""


@dataclass(frozen=True)
class HostSettings:
    max_concurrency: int
    max_function_concurrency: int
    idle_seconds: float
    credential_seconds: float
    # Where code is unpacked for workers, outside the data directory; None: a fresh
    # directory under the system temp dir, made at start and removed at stop.
    work_dir: Path | None
    launch: Launch
    sweep_seconds: float = 1.0
    key_sweep_seconds: float = 60.0  # how often expired function keys are deleted


class FunctionHost:
    """Runs functions in worker processes. Start and stop it on the server's event loop."""

    def __init__(
        self,
        settings: HostSettings,
        db: Database,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        # Draws the version of each invocation of a weighted alias (seed it in tests).
        self.rng = rng or random.Random()
        self.db = db
        self.clock = clock
        self._idle: dict[tuple[str, str, str], list[Worker]] = {}
        self._busy_total = 0
        self._busy: dict[str, int] = {}
        self._workers: set[Worker] = set()
        self._unpacking: dict[str, asyncio.Task[Path]] = {}
        self._events: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        # Workers being stopped: still counted until their key is revoked.
        self._stopping: set[Worker] = set()
        self._freed = asyncio.Event()  # set whenever a running invocation ends
        self._sweeper: asyncio.Task[None] | None = None
        self.cold_starts = 0
        self.work_dir = settings.work_dir or Path(tempfile.gettempdir())  # set by start()
        self._keys_swept = 0.0
        # The spec of each (function, version, RevisionId) invoked lately: a revision's
        # doc never changes (every update gives a new RevisionId, the same key that keeps
        # an update from reusing an old worker). Bounded: cleared when full.
        self._specs: dict[tuple[str, str, str], FunctionSpec] = {}

    # -- Worker protocol (server/context.py) -----------------------------------------------

    def start(self) -> None:
        if self.settings.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="shipyard-functions-"))
        else:
            self.work_dir = self.settings.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.chmod(0o711)  # workers may pass, not list
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def alive(self) -> bool:
        """Whether its sweeper (idle workers, expired keys) runs (GET /readyz)."""
        return self._sweeper is not None and not self._sweeper.done()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._events):
            task.cancel()
        await asyncio.gather(*self._events, *self._retiring, return_exceptions=True)
        await asyncio.gather(*(self._retire(w) for w in list(self._workers)))
        self._idle.clear()
        # Unpacked code is cheap to make again; a stale copy must not outlive a restart.
        shutil.rmtree(self.work_dir / "code", ignore_errors=True)
        if self.settings.work_dir is None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- invocations ---------------------------------------------------------------------

    async def invoke(
        self,
        spec: FunctionSpec,
        payload: bytes,
        invoked_arn: str,
        client_context: str = "",
        *,
        want_log: bool = False,
    ) -> Outcome:
        """Run one synchronous invocation; raises ``Throttled`` when there is no room."""
        self._claim(spec.name)
        try:
            return await self._run(spec, payload, invoked_arn, client_context, want_log)
        finally:
            self._release(spec.name)

    def submit_event(self, spec: FunctionSpec, payload: bytes, invoked_arn: str) -> None:
        """Queue an asynchronous invocation; raises ``Throttled`` when the queue is full."""
        if len(self._events) >= MAX_QUEUED_EVENTS:
            raise Throttled()
        task = asyncio.get_running_loop().create_task(self._event(spec, payload, invoked_arn))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    def forget(self, function: str, version: str | None = None) -> None:
        """Stop the idle workers of a deleted or changed function (or of one version)."""
        for key in [k for k in self._idle if k[0] == function and version in (None, k[1])]:
            for worker in self._idle.pop(key):
                task = asyncio.get_running_loop().create_task(self._retire(worker))
                self._retiring.add(task)  # held until done: the loop keeps weak references
                task.add_done_callback(self._retiring.discard)

    def spec(self, key: tuple[str, str, str], build: Callable[[], FunctionSpec]) -> FunctionSpec:
        """The spec of revision ``key`` (function, version, RevisionId), built once."""
        spec = self._specs.get(key)
        if spec is None:
            if len(self._specs) >= MAX_SPECS:
                self._specs.clear()
            spec = self._specs[key] = build()
        return spec

    @property
    def worker_count(self) -> int:
        return len(self._workers) + len(self._stopping)

    @property
    def busy(self) -> int:
        """Invocations running now."""
        return self._busy_total

    async def _event(self, spec: FunctionSpec, payload: bytes, invoked_arn: str) -> None:
        for _attempt in range(1 + EVENT_RETRIES):
            while True:
                try:
                    self._claim(spec.name)
                    break
                except Throttled:  # wait for an invocation to finish, then try again
                    self._freed.clear()
                    await self._freed.wait()
            try:
                outcome = await self._run(spec, payload, invoked_arn, "", False)
            except Exception:
                log.exception("event invocation of %s failed", spec.name)
                return
            finally:
                self._release(spec.name)
            if not outcome.is_error:
                return
            log.info(
                "event invocation of %s:%s failed: %s", spec.name, spec.version, outcome.body[:500]
            )

    def _claim(self, function: str) -> None:
        busy = self._busy.get(function, 0)
        if (
            self._busy_total >= self.settings.max_concurrency
            or busy >= self.settings.max_function_concurrency
        ):
            raise Throttled()
        self._busy_total += 1
        self._busy[function] = busy + 1

    def _release(self, function: str) -> None:
        self._busy_total -= 1
        self._freed.set()
        self._busy[function] -= 1
        if not self._busy[function]:
            del self._busy[function]

    async def _run(
        self,
        spec: FunctionSpec,
        payload: bytes,
        invoked_arn: str,
        client_context: str,
        want_log: bool,
    ) -> Outcome:
        try:
            worker = await self._checkout(spec)
        except OSError as exc:  # no bootstrap, not executable: Lambda's function error
            body = json.dumps(
                {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": f"{exc.strerror}"}
            )
            return Outcome(body.encode(), True)
        request_id = str(uuid.uuid4())
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            deadline_ms=int((time.time() + spec.timeout) * 1000),
            invoked_arn=invoked_arn,
            # X-Ray's shape; the request id's randomness serves (one uuid4 per call).
            trace_id=f"Root=1-{int(time.time()):08x}-{request_id.replace('-', '')[:24]};Sampled=0",
            client_context=client_context,
        )
        outcome = await worker.invoke(invocation, want_log=want_log)
        worker.last_used = self.clock()
        if worker.alive and worker.last_used - worker.started < self.settings.credential_seconds:
            self._idle.setdefault(spec.key, []).append(worker)
        else:
            await self._retire(worker)
        return outcome

    async def _checkout(self, spec: FunctionSpec) -> Worker:
        idle = self._idle.get(spec.key)
        while idle:
            worker = idle.pop()
            if worker.alive:
                return worker
            await self._retire(worker)
        if len(self._workers) >= self.settings.max_concurrency:
            await self._evict_one()
        return await self._spawn(spec)

    async def _spawn(self, spec: FunctionSpec) -> Worker:
        code_dir = await self._code_dir(spec)
        now = self.clock()
        scratch = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="worker-"))
        user = self.settings.launch.user
        if user is not None:
            shutil.chown(scratch, user[0], user[1])
        with self.db.tx() as conn:
            name = f"{spec.name}:{spec.version}"
            key = credentials.issue_function_key(conn, self.db.secret_box, name, now)
        try:
            worker = await start_worker(spec, self.settings.launch, code_dir, scratch, key, now)
        except BaseException:
            self._revoke(key[0])
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        self._workers.add(worker)
        self.cold_starts += 1
        return worker

    async def _code_dir(self, spec: FunctionSpec) -> Path:
        target = self.work_dir / "code" / spec.name / spec.package_path.stem
        if target.is_dir():
            return target
        task = self._unpacking.get(str(target))
        if task is None:
            task = asyncio.get_running_loop().create_task(
                asyncio.to_thread(_unpack_once, spec.package_path, target)
            )
            self._unpacking[str(target)] = task
            task.add_done_callback(lambda _t: self._unpacking.pop(str(target), None))
        return await task

    async def _evict_one(self) -> None:
        """Make room for a new worker by stopping the longest-idle one."""
        candidates = [(w.last_used, key, w) for key, ws in self._idle.items() for w in ws]
        if not candidates:
            raise Throttled()
        _, key, worker = min(candidates, key=lambda item: item[0])
        self._idle[key].remove(worker)
        await self._retire(worker)

    async def _retire(self, worker: Worker) -> None:
        if worker not in self._workers:
            return
        self._workers.discard(worker)
        self._stopping.add(worker)
        try:
            await worker.kill()
            self._revoke(worker.access_key_id)
            shutil.rmtree(worker.scratch, ignore_errors=True)
        finally:
            self._stopping.discard(worker)

    def _revoke(self, access_key_id: str) -> None:
        with self.db.tx() as conn:
            credentials.revoke_key(conn, access_key_id)

    # -- sweeping ------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_seconds)
            try:
                await self.sweep(self.clock())
            except Exception:
                log.exception("function host sweep failed")

    async def sweep(self, now: float) -> None:
        """Stop idle workers past their idle time or key lifetime; drop expired keys."""
        for key, workers in list(self._idle.items()):
            for worker in list(workers):
                idle_too_long = now - worker.last_used >= self.settings.idle_seconds
                too_old = now - worker.started >= self.settings.credential_seconds
                if idle_too_long or too_old or not worker.alive:
                    workers.remove(worker)
                    await self._retire(worker)
            if not workers:
                self._idle.pop(key, None)
        if now - self._keys_swept >= self.settings.key_sweep_seconds:
            self._keys_swept = now
            expired = now - self.settings.credential_seconds - MAX_TIMEOUT
            with self.db.tx() as conn:
                credentials.revoke_issued_before(conn, "function", expired)


def _unpack_once(package: Path, target: Path) -> Path:
    if not target.is_dir():
        try:
            unpack(package, target)
        except OSError:
            if not target.is_dir():  # not another unpacker finishing first
                raise
    return target
