"""The agent's main loop: recover, long-poll, hand commands to workers, report.

Per command (as the stock agent does): fetch the deployment specification, acknowledge
(saying whether the command is a no-op), record it in the tracking file, run it while
streaming its output, report the result, forget the tracking file. The poller asks for
the next command as soon as one is handed to a worker, so commands of different
deployment groups run side by side, up to ``max_concurrent_commands``.

Between events the agent does not poll: it asks for the next command with the
result (``ShipyardNextCommand``), and the server hands it back already acknowledged
when it is queued, so a lifecycle event costs one request instead of three.
"""

from __future__ import annotations

import logging
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from shipyard.agent import executor
from shipyard.agent.client import (
    CommandClient,
    CommandServiceError,
    ConnectionFailed,
    HostCommand,
    ProtocolError,
)
from shipyard.agent.layout import Layout
from shipyard.agent.logs import configure_logging
from shipyard.agent.startup import StartupError, prepare_root
from shipyard.agent.state import CommandTracker
from shipyard.agent.stream import OutputStreamer
from shipyard.config import AGENT_ENV_PREFIX, AgentConfig, build

log = logging.getLogger("shipyard.agent")
T = TypeVar("T")

RESTARTED_ERROR_CODE = 7
RESTARTED_MESSAGE = "Failed: the agent restarted while the command was running"
UNKNOWN_ERROR_CODE = 5
MAX_LOG_TAIL_BYTES = 4096
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
MIN_POLL_SECONDS = 0.5  # a server answering "nothing" at once must not make us spin
SETUP_RETRY_SECONDS = 15.0  # specification and acknowledgement
COMPLETE_RETRY_SECONDS = 300.0  # a result is worth waiting for the server a while
OUTPUT_FLUSH_SECONDS = 30.0
# On SIGTERM, running hooks get as long as CodeDeploy gives one lifecycle event.
SHUTDOWN_GRACE_SECONDS = 3600.0
# A rejected key is final, but a server being restarted or restored may briefly not know
# keys it will know again: give up on the third rejection in a row (after backing off).
KEY_REJECTED_TRIES = 3
SPEC_CACHE_SIZE = 64  # deployments whose specification a worker remembers
# The server presigns bundle URLs for an hour; a specification younger than this still
# has a usable one, so DownloadBundle need not fetch it again.
SPEC_FRESH_SECONDS = 600.0


def backoff_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait after ``failures`` consecutive errors: 0.5, 1, 2, 4 … 30, jittered."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2.0 ** max(0, failures - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


# Answers that say "not now" rather than "no": a proxy without a live server behind it
# (502, 504), a server whose database is out of reach (503).
RETRIED_STATUSES = frozenset({502, 503, 504})


def with_retries(action: Callable[[], T], what: str, give_up_after: float) -> T:
    """Run ``action``, retrying ConnectionFailed and unavailable answers (RETRIED_STATUSES)
    with backoff for ``give_up_after`` seconds."""
    deadline = time.monotonic() + give_up_after
    rng: random.Random | None = None  # seeded on the first failure only (it costs)
    failures = 0
    while True:
        try:
            return action()
        except (ConnectionFailed, ProtocolError) as exc:
            if isinstance(exc, ProtocolError) and exc.status not in RETRIED_STATUSES:
                raise
            failures += 1
            rng = rng or random.Random()
            delay = backoff_delay(failures, rng)
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s; retrying in %.1f s", what, exc, delay)
            time.sleep(delay)


def diagnostics(error_code: int, script_name: str, message: str, log_tail: str) -> dict[str, Any]:
    """The PutHostCommandComplete payload, as the stock agent shapes it."""
    return {
        "error_code": error_code,
        "script_name": script_name,
        "message": message,
        "log": log_tail.encode()[-MAX_LOG_TAIL_BYTES:].decode(errors="ignore"),
    }


def recover_interrupted(
    client: CommandClient, tracker: CommandTracker, stop: threading.Event, now: float
) -> None:
    """Report commands a previous agent process died in the middle of, then forget them."""
    rng = random.Random()
    for command in tracker.interrupted(now):
        failures = 0
        while True:
            try:
                client.complete(
                    command.command_id,
                    "Failed",
                    diagnostics(RESTARTED_ERROR_CODE, "", RESTARTED_MESSAGE, ""),
                )
                log.info(
                    "reported interrupted command %s of %s as failed",
                    command.command_id,
                    command.deployment_id,
                )
                break
            except ProtocolError as exc:
                log.warning("interrupted command %s: %s", command.command_id, exc)
                break
            except ConnectionFailed as exc:
                failures += 1
                delay = backoff_delay(failures, rng)
                log.warning("crash recovery: %s; retrying in %.1f s", exc, delay)
                if stop.wait(delay):
                    return  # keep the tracking file: the next start reports it
        tracker.end(command.deployment_id)
    tracker.clear()


class CommandWorker:
    """Carries one host command from specification to reported result."""

    def __init__(
        self,
        config: AgentConfig,
        client: CommandClient,
        streamer: OutputStreamer,
        tracker: CommandTracker,
    ) -> None:
        self.config = config
        self.client = client
        self.streamer = streamer
        self.tracker = tracker
        # execution id -> (specification, when it was fetched)
        self._specs: dict[str, tuple[dict[str, Any], float]] = {}
        # id(payload) -> (payload, its parse); the payload is held so the id stays its own
        self._parsed_specs: dict[int, tuple[dict[str, Any], executor.DeploymentSpec]] = {}
        self._specs_lock = threading.Lock()

    def handle(self, command: HostCommand) -> HostCommand | None:
        """Run ``command``; the next one the server handed back with its result.

        Never raises: a failure is reported to the server or, failing that, logged."""
        name, command_id = command.command_name, command.command_id
        try:
            handed = self._handle(command)
            if handed is not None:
                _check_command(handed, self.config)
            return handed
        except CommandServiceError as exc:
            log.error("%s (command %s): %s", name, command_id, exc)
        except Exception:
            log.exception("%s (command %s): unexpected error", name, command_id)
        return None

    def _specification(self, command: HostCommand) -> dict[str, Any]:
        """The deployment's specification, fetched once per deployment and host (the
        server's execution id is stable across its commands); DownloadBundle fetches
        it afresh once the presigned bundle URL in it may be close to expiring."""
        key = command.execution_id
        if command.specification is not None:  # sent along with the command
            with self._specs_lock:
                self._remember(key, command.specification)
            return command.specification
        with self._specs_lock:
            cached = self._specs.get(key)
        if cached is not None:
            payload, fetched = cached
            fresh = time.monotonic() - fetched < SPEC_FRESH_SECONDS
            if fresh or command.command_name != "DownloadBundle":
                return payload
        payload = with_retries(
            lambda: self.client.get_specification(key),
            f"{command.command_name}: deployment specification",
            SETUP_RETRY_SECONDS,
        )
        with self._specs_lock:
            self._remember(key, payload)
        return payload

    def _remember(self, key: str, payload: dict[str, Any]) -> None:
        """Cache a specification (the caller holds ``_specs_lock``)."""
        self._specs[key] = (payload, time.monotonic())
        while len(self._specs) > SPEC_CACHE_SIZE:
            self._specs.pop(next(iter(self._specs)))

    def _parsed(self, payload: dict[str, Any]) -> executor.DeploymentSpec:
        """``payload`` parsed, once per payload: the events of a deployment handed back
        with results share the cached payload object, so its parse is kept beside it."""
        key = id(payload)
        with self._specs_lock:
            hit = self._parsed_specs.get(key)
        if hit is not None and hit[0] is payload:
            return hit[1]
        spec = executor.parse_spec(payload)  # a ValueError is not cached: it fails each time
        with self._specs_lock:
            self._parsed_specs[key] = (payload, spec)
            while len(self._parsed_specs) > SPEC_CACHE_SIZE:
                self._parsed_specs.pop(next(iter(self._parsed_specs)))
        return spec

    def _handle(self, command: HostCommand) -> HostCommand | None:
        name, command_id = command.command_name, command.command_id
        payload = self._specification(command)
        is_noop = False
        try:
            spec = self._parsed(payload)
            # Only an acknowledgement says whether the command is a no-op: a command
            # handed back already acknowledged skips the check (it reads the appspec).
            if not command.acknowledged:
                is_noop = executor.is_noop(name, spec, self.config)
        except Exception as exc:  # a bad spec fails the command, visibly
            if not command.acknowledged:
                self._acknowledge(command, is_noop=False)
            outcome = diagnostics(UNKNOWN_ERROR_CODE, "", f"{name}: {exc}", "")
            return self._complete(command_id, outcome)
        status = (
            "InProgress" if command.acknowledged else self._acknowledge(command, is_noop=is_noop)
        )
        if status in ("Succeeded", "Failed"):
            # The server already settled this command; it must not run (again).
            if status == "Failed" and is_noop:
                outcome = diagnostics(0, "", "Succeeded", "CompletedNoopCommand")
                return self._complete(command_id, outcome)
            return None
        deployment_id = spec.deployment_id
        may_have_run = command.from_poll and command.acknowledged  # offered again?
        if may_have_run and self.tracker.holds(deployment_id, command_id):
            # Offered again by a poll while its result went undelivered: it ran once,
            # and must not run twice. Its outcome is lost with the result.
            message = "The command ran, but its result could not be delivered"
            outcome = diagnostics(UNKNOWN_ERROR_CODE, "", message, "")
            return self._complete(command_id, outcome, deployment_id)
        try:
            self.tracker.begin(deployment_id, command_id)
        except OSError as exc:
            message = f"cannot record the running command: {exc}"
            return self._complete(command_id, diagnostics(UNKNOWN_ERROR_CODE, "", message, ""))
        log.info("%s: running (command %s, deployment %s)", name, command_id, deployment_id)
        write = self.streamer.open(command_id)
        noops: frozenset[str] = frozenset()
        try:
            result = executor.execute(name, spec, self.config, write)
            outcome = diagnostics(
                int(result.error_code), result.script_name, result.message, result.log
            )
            if result.succeeded:  # the server may complete the next no-ops for us
                noops = executor.noop_events(spec, self.config)
        except Exception as exc:
            log.exception("%s: the executor failed", name)
            outcome = diagnostics(UNKNOWN_ERROR_CODE, "", f"{type(exc).__name__}: {exc}", "")
        finally:
            self.streamer.finish(command_id, OUTPUT_FLUSH_SECONDS)
        return self._complete(command_id, outcome, deployment_id, noops)

    def _acknowledge(self, command: HostCommand, *, is_noop: bool) -> str | None:
        return with_retries(
            lambda: self.client.acknowledge(command.command_id, is_noop=is_noop),
            f"{command.command_name}: acknowledgement",
            SETUP_RETRY_SECONDS,
        )

    def _complete(
        self,
        command_id: str,
        outcome: dict[str, Any],
        deployment_id: str | None = None,
        noop_events: frozenset[str] = frozenset(),
    ) -> HostCommand | None:
        """Report the result (with the hook events that have nothing to run); then
        forget the tracking file of ``deployment_id``. Returns the next command the
        server handed back with the answer."""
        status = "Succeeded" if outcome["error_code"] == 0 else "Failed"
        handed: HostCommand | None = None
        try:
            handed = with_retries(
                lambda: self.client.complete(
                    command_id, status, outcome, then_next=True, noop_events=noop_events
                ),
                f"command {command_id}: reporting the result",
                COMPLETE_RETRY_SECONDS,
            )
        except ConnectionFailed as exc:
            # The tracking file stays: the next agent start reports the command failed.
            log.error("command %s: result not delivered: %s", command_id, exc)
            return None
        except ProtocolError as exc:
            log.error("command %s: result refused: %s", command_id, exc)
        if status == "Succeeded":
            log.info("command %s: Succeeded", command_id)
        else:
            code, message = outcome["error_code"], outcome["message"]
            log.warning("command %s: Failed with error code %s: %s", command_id, code, message)
        if deployment_id is not None:
            self.tracker.end(deployment_id)
        return handed


class WorkerPool:
    """Runs up to ``size`` commands at once on reused daemon threads.

    Daemon threads, because a hook that outlives the shutdown grace period must not
    keep the process alive.
    """

    def __init__(self, size: int, handle: Callable[[HostCommand], HostCommand | None]) -> None:
        self._size = max(1, size)
        self._handle = handle
        self._queue: queue.SimpleQueue[HostCommand] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._busy = 0
        self._threads = 0
        # Command ids being handled: a command the server offers again (its poll answer
        # seemed lost) while we already hold it must not run twice.
        self._in_hand: set[str] = set()

    def wait_for_slot(self, stop: threading.Event) -> bool:
        """Block while every worker is busy; False once ``stop`` is set."""
        with self._cond:
            while self._busy >= self._size and not stop.is_set():
                self._cond.wait(1.0)
        return not stop.is_set()

    def submit(self, command: HostCommand) -> None:
        with self._cond:
            if command.command_id in self._in_hand:
                log.info("command %s offered again while running; ignored", command.command_id)
                return
            self._in_hand.add(command.command_id)
            self._busy += 1
            if self._threads < self._busy:
                self._threads += 1
                name = f"worker-{self._threads}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
        self._queue.put(command)

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)

    def _work(self) -> None:
        while True:
            command: HostCommand | None = self._queue.get()
            try:
                while command is not None:
                    handed = self._handle(command)
                    with self._cond:
                        self._in_hand.discard(command.command_id)
                        command = self._take(handed)
            finally:
                with self._cond:
                    if command is not None:
                        self._in_hand.discard(command.command_id)
                    self._busy -= 1
                    self._cond.notify_all()

    def _take(self, handed: HostCommand | None) -> HostCommand | None:
        """Keep the worker (and its slot) for a command handed back with a result."""
        if handed is None:
            return None
        if handed.command_id in self._in_hand:
            log.info("command %s offered again while running; ignored", handed.command_id)
            return None
        self._in_hand.add(handed.command_id)
        return handed


def poll_forever(
    poller: CommandClient, pool: WorkerPool, config: AgentConfig, stop: threading.Event
) -> None:
    """Long-poll for commands until ``stop``; back off on errors, one log line each."""
    rng = random.Random()
    failures = rejected = 0
    while pool.wait_for_slot(stop):
        started = time.monotonic()
        try:
            command = poller.poll_host_command()
            if command is not None:
                _check_command(command, config)
        except Exception as exc:
            if stop.is_set():
                break
            rejected = rejected + 1 if _key_rejected(exc) else 0
            if rejected >= KEY_REJECTED_TRIES:
                raise KeyRejected(poller.endpoint, config.instance_name) from exc
            failures += 1
            delay = backoff_delay(failures, rng)
            if isinstance(exc, CommandServiceError):
                log.warning("%s; retrying in %.1f s", exc, delay)
            else:  # a bug: its traceback once, then one line per repeat
                log.error(
                    "polling failed: %s: %s; retrying in %.1f s",
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=failures == 1,
                )
            stop.wait(delay)
            continue
        if failures:
            log.info("connected to %s again", poller.endpoint)
        failures = 0
        if command is None:
            stop.wait(max(0.0, MIN_POLL_SECONDS - (time.monotonic() - started)))
            continue
        log.debug("received %s (command %s)", command.command_name, command.command_id)
        pool.submit(command)


class KeyRejected(Exception):
    """The server no longer knows this agent's key: retrying cannot help."""

    def __init__(self, endpoint: str, instance: str) -> None:
        super().__init__(
            f"the server at {endpoint} rejects this agent's key (UnrecognizedClientException): "
            f"instance {instance} was deregistered or its key revoked; stopping. Register it "
            "again (shipyard instance register) and start the agent with the new config"
        )


def _key_rejected(exc: Exception) -> bool:
    return isinstance(exc, ProtocolError) and exc.code == "UnrecognizedClientException"


def _check_command(command: HostCommand, config: AgentConfig) -> None:
    # The stock agent's rule: the server's host identifier must be part of ours.
    if command.host_identifier not in config.host_identifier:
        raise ProtocolError(
            "InvalidResponse",
            f"command {command.command_id} is for host {command.host_identifier!r}, "
            f"not {config.host_identifier!r}",
        )
    if not command.command_name:
        raise ProtocolError("InvalidResponse", f"command {command.command_id} has no name")


def run_agent(config: AgentConfig, stop: threading.Event) -> None:
    """Run until ``stop`` is set; then let running commands finish (bounded)."""
    client = CommandClient(config)  # workers and the output streamer
    poller = CommandClient(config)  # the long poll only, so shutdown can break it off
    streamer = OutputStreamer(client.post_update)
    Layout(config.root_dir).secure_root()
    tracker = CommandTracker(config.root_dir)
    pool = WorkerPool(
        config.max_concurrent_commands, CommandWorker(config, client, streamer, tracker).handle
    )

    def break_off_poll_on_stop() -> None:
        stop.wait()
        poller.shutdown()

    threading.Thread(target=break_off_poll_on_stop, name="stop-watcher", daemon=True).start()
    log.info("agent started: instance %s, server %s", config.instance_name, config.endpoint)
    streamer.start()
    try:
        recover_interrupted(client, tracker, stop, time.time())
        poll_forever(poller, pool, config, stop)
    finally:
        if not pool.wait_idle(SHUTDOWN_GRACE_SECONDS):
            log.warning("stopping with commands still running")
        streamer.stop()
        client.close()
        poller.close()
        log.info("agent stopped")


def main(config_path: Path) -> int:
    """``shipyard agent --config FILE``: run until SIGTERM or SIGINT."""
    try:
        config = build(AgentConfig, file=config_path, prefix=AGENT_ENV_PREFIX)
        CommandClient(config)  # rejects a malformed endpoint before anything starts
    except ValueError as exc:  # ConfigError, a malformed endpoint, an unreadable CA file
        print(f"shipyard agent: {exc}", file=sys.stderr)
        return 2
    try:
        lock = prepare_root(config.root_dir)
    except StartupError as exc:
        print(f"shipyard agent: {exc}", file=sys.stderr)
        return 1
    configure_logging(config.log_dir, verbose=config.verbose)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    with lock:
        try:
            run_agent(config, stop)
        except KeyRejected as exc:
            log.error("%s", exc)
            return 1
    return 0


__all__ = [
    "CommandWorker",
    "WorkerPool",
    "backoff_delay",
    "main",
    "poll_forever",
    "recover_interrupted",
    "run_agent",
]
