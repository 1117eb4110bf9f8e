"""What agents talk to: the long poll, acknowledgements, the deployment
specification, streamed output and results.

Every result goes back through the runner's ``apply_in`` (the engine); nothing here
decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from shipyard.cluster.polls import UNREGISTERED, LatestPolls
from shipyard.engine.messages import Acknowledged, Completed
from shipyard.engine.state import StoredDeployment
from shipyard.errors import (
    BadCommandStatus,
    CommandFinished,
    UnknownExecution,
    UnknownHostCommand,
)
from shipyard.model import (
    AGENT_ERROR_CODES,
    CommandStatus,
    LifecycleEventStatus,
)
from shipyard.platforms import platform_for_info
from shipyard.runner.after_commit import AfterCommit
from shipyard.runner.contacts import ContactBook
from shipyard.runner.group_commit import GroupCommit
from shipyard.store import deployments as store
from shipyard.store import host_commands as commands
from shipyard.store.dialects import commit_lazily

if TYPE_CHECKING:
    from shipyard.runner.core import Runner

LOG_TAIL_BYTES = 4096
# Bundle URLs are presigned for an hour (bundlestore/urls.py); an agent uses its copy
# of a specification for up to 10 minutes, so one built 5 minutes ago is still good.
SPEC_REUSE_SECONDS = 300.0
SPEC_CACHE_SIZE = 256

# What the agent reports for a hook without scripts (agent/executor.py).
NOOP_REPORT = {"error_code": 0, "script_name": "", "message": "Succeeded", "log": ""}

BundleUrl = Callable[[dict[str, Any]], str]


class _Superseded:
    """A poll's claim found a newer poll of the same agent: the poll ends."""


SUPERSEDED = _Superseded()
Claimed = commands.HostCommand | _Superseded | None


@dataclass(frozen=True)
class HostCommandView:
    id: int
    deployment_id: str
    command_name: str
    execution_id: str
    acknowledged: bool = False  # handed out already acknowledged (Shipyard's agent)


def execution_id(deployment_id: str, instance: str) -> str:
    """One id per deployment and host (the model's pattern is ``^[^/]+/[^/]+/[^/]+/.+$``),
    so an agent may fetch the specification once and reuse it for every event."""
    return f"{deployment_id}/host/1/{instance}"


class AgentChannel:
    def __init__(self, runner: Runner, bundle_url: BundleUrl | None) -> None:
        self.runner = runner
        self.config = runner.config
        self.db = runner.db
        self.clock = runner.clock
        self.bundle_url = bundle_url
        self._waiters: dict[str, asyncio.Event] = {}
        self._closing = False
        # instance name -> polls this process holds open for it right now
        self._polling: dict[str, int] = {}
        # instance name -> number of its latest poll: an agent polls one at a time, so
        # a newer poll means an older one belongs to a dead connection (a killed agent)
        # and must not claim the host's next command.
        self._poll_generation: dict[str, int] = {}
        # Across replicas: only an agent's latest poll, wherever held, claims (cluster).
        self.latest = LatestPolls(shared=lambda: len(runner.share.members) > 1)
        # deployment id -> (when built, specification): every host of a deployment
        # gets the same one, and presigning its bundle URL is the costly part.
        self._spec_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        # Results, acknowledgements and the claims of woken polls that arrive in one
        # event-loop turn share a transaction (an AllAtOnce start wakes every poll at
        # once): one commit, and on PostgreSQL one wait for the disk, per batch.
        self._lifecycle: GroupCommit[Any] = GroupCommit(self.db, runner.after_commit)
        # The polls' routine ``last_seen`` refreshes, written once a second by the sweeper.
        self.contacts = ContactBook(self.db)

    def is_polling(self, instance: str) -> bool:
        return instance in self._polling

    def polling(self) -> list[str]:
        """Instances whose polls this process holds open now."""
        return list(self._polling)

    def open_polls(self) -> int:
        return sum(self._polling.values())

    def release_polls(self) -> None:
        """Shutting down: answer every open long poll now, with no command."""
        self._closing = True
        for waiter in self._waiters.values():
            waiter.set()

    def recheck_waiting(self) -> None:
        """One query for all open polls (the sweeper calls this every second): wake
        the pollers whose host has work queued by another replica, or a command whose
        poll answer was lost and is due to be offered again."""
        if not self._polling:
            return
        now = self.clock()
        with self.db.tx() as conn:
            ready = commands.instances_with_work(
                conn, self._polling.keys(), now - self.config.reoffer_seconds
            )
        self.wake(ready)

    def wake(self, instances: set[str]) -> None:
        for name in instances:
            waiter = self._waiters.get(name)
            if waiter is not None:
                waiter.set()

    async def poll(
        self,
        instance: str,
        timeout: float,
        check: Callable[[Connection], bool] | None = None,
        *,
        acknowledge: bool = False,
    ) -> HostCommandView | None:
        """The next command for ``instance``, waiting up to ``timeout`` seconds for one.

        With ``acknowledge`` (Shipyard's agent asks for it) the command is handed out
        acknowledged, sparing the agent its PutHostCommandAcknowledgement: the engine
        takes the acknowledgement in the claim's transaction, and a command it no
        longer wants is failed there and never handed out. The command stays offered
        again after ``reoffer_seconds`` like any unacknowledged claim, since the answer
        may be lost on its way; the agent ignores an offer of a command it holds or has
        run (``agent/loop.py``).

        ``check`` (the caller's host check) runs in the transaction of the first
        claim, before it: an idle poll costs one transaction, and a check that raises
        claims nothing. It returns whether it wrote a heartbeat: when the claim then
        finds nothing, the transaction holds only that, and commits without waiting
        for the disk (a heartbeat lost in a database crash is written by the next poll;
        a claim is always durable).

        Without ``check`` (the caller checked the host already, and has nothing to
        write) the first claim is preceded by a look outside any transaction: an idle
        poll of a lone server, nothing queued for it, costs one read and no transaction
        at all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiter = self._waiters.setdefault(instance, asyncio.Event())
        self._polling[instance] = self._polling.get(instance, 0) + 1
        generation = self._poll_generation.get(instance, 0) + 1
        self._poll_generation[instance] = generation
        waiter.set()  # wake any older poll of this instance, so it can give up
        try:
            return await self._poll(instance, waiter, deadline, generation, check, acknowledge)
        finally:
            self._polling[instance] -= 1
            if not self._polling[instance]:
                del self._polling[instance]

    async def _poll(
        self,
        instance: str,
        waiter: asyncio.Event,
        deadline: float,
        generation: int,
        check: Callable[[Connection], bool] | None,
        acknowledge: bool,
    ) -> HostCommandView | None:
        loop = asyncio.get_running_loop()
        poll_id, first = self.latest.new_poll(), True
        while not self._closing:
            if self._poll_generation.get(instance) != generation:
                return None  # superseded by a newer poll of the same agent
            waiter.clear()
            if first:
                command = self._first_claim(instance, poll_id, check, acknowledge)
                first = False
            else:
                # Woken: claim in this turn's shared transaction. The work re-checks
                # supersession, which may have happened while it waited in the queue.
                def claim(conn: Connection, after: AfterCommit) -> Claimed:
                    if self._closing or self._poll_generation.get(instance) != generation:
                        return SUPERSEDED
                    return self._claim_in(conn, after, instance, poll_id, acknowledge)

                command = await self._lifecycle.run(claim)
            if isinstance(command, _Superseded):
                return None
            if command is not None:
                return _view(command, instance, acknowledged=acknowledge)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            # Woken by work queued here, by a newer poll, at shutdown, or by
            # recheck_waiting() for work another replica queued. Not woken by the
            # deadline: nothing was queued for this instance meanwhile, so the poll
            # ends without another look (the agent's next poll would find it anyway).
            try:
                await asyncio.wait_for(waiter.wait(), remaining)
            except TimeoutError:
                return None
        return None

    def _first_claim(
        self,
        instance: str,
        poll_id: int,
        check: Callable[[Connection], bool] | None,
        acknowledge: bool,
    ) -> Claimed:
        """The poll's first look, with the host check, in a transaction of its own: an
        idle poll that only wrote a heartbeat commits without waiting for the disk.
        A poll with no check to run and no registration to write looks first, and
        finding nothing needs no transaction."""
        if check is None and poll_id == UNREGISTERED:
            reoffer_before = self.clock() - self.config.reoffer_seconds
            if not commands.has_work(self.db.quick, instance, reoffer_before):
                return None
        after = AfterCommit()
        with self.db.tx() as conn:
            heartbeat = check is not None and check(conn)
            command = self._claim_in(conn, after, instance, poll_id, acknowledge, first=True)
            if heartbeat and command is None:
                commit_lazily(conn)
        self.runner.after_commit(after)
        return command

    def _claim_in(
        self,
        conn: Connection,
        after: AfterCommit,
        instance: str,
        poll_id: int,
        acknowledge: bool,
        *,
        first: bool = False,
    ) -> Claimed:
        now = self.clock()
        if not self.latest.may_claim(conn, instance, poll_id, now, first):
            return SUPERSEDED  # by a newer poll held by another replica
        reoffer_before = now - self.config.reoffer_seconds
        while True:
            command = commands.claim_next_command(conn, instance, now, reoffer_before)
            if command is None or not acknowledge or self._wanted(conn, command, after):
                return command

    def _own_command(
        self, conn: Connection, instance: str, command_id: int
    ) -> commands.HostCommand:
        command = commands.get_command(conn, command_id)
        if command is None or command.instance_name != instance:
            raise UnknownHostCommand(command_id)
        return command

    async def acknowledge(self, instance: str, command_id: int) -> str:
        def work(conn: Connection, after: AfterCommit) -> str:
            return self._acknowledge_in(conn, self._own_command(conn, instance, command_id), after)

        status: str = await self._lifecycle.run(work)
        return status

    def _acknowledge_in(
        self, conn: Connection, command: commands.HostCommand, after: AfterCommit
    ) -> str:
        """Acknowledge ``command`` in the caller's transaction; the status the agent
        must act on: InProgress to run it, anything else not to."""
        if command.status != CommandStatus.IN_PROGRESS.value:
            return command.status
        if not self._wanted(conn, command, after):
            return CommandStatus.FAILED.value
        commands.acknowledge_command(conn, command.id, self.clock())
        return CommandStatus.IN_PROGRESS.value

    def _wanted(self, conn: Connection, command: commands.HostCommand, after: AfterCommit) -> bool:
        """Step the engine with the acknowledgement of ``command``: whether the event
        is still to run. One the engine no longer wants (the deployment stopped or
        ended) is failed here, and the agent must not run it."""
        event = Acknowledged(command.instance_name, command.command_name)
        stored = self.runner.apply_in(conn, command.deployment_id, event, after)
        if stored is not None and _running(stored, command.instance_name, command.command_name):
            return True
        commands.finish_command(conn, command.id, CommandStatus.FAILED.value, self.clock())
        return False

    def specification(self, instance: str, execution: str) -> dict[str, Any]:
        parts = execution.split("/", 3)
        if len(parts) != 4 or parts[3] != instance:
            raise UnknownExecution(execution)
        cached = self.runner.cached(parts[0])
        if cached is not None:  # this process stepped it last: no need to re-read it
            stored: StoredDeployment | None = cached[1]
        else:
            with self.db.tx() as conn:
                stored = store.load(conn, parts[0])
        if stored is None or instance not in stored.state.targets:
            raise UnknownExecution(execution)
        now = self.clock()
        built = self._spec_cache.get(parts[0])
        if built is not None and now - built[0] < SPEC_REUSE_SECONDS:
            return built[1]
        payload = self._spec_payload(stored)
        self._spec_cache[parts[0]] = (now, payload)
        while len(self._spec_cache) > SPEC_CACHE_SIZE:
            self._spec_cache.pop(next(iter(self._spec_cache)))
        return payload

    def _spec_payload(self, stored: StoredDeployment) -> dict[str, Any]:
        platform = platform_for_info(stored.info)
        return platform.specification(stored, self.config, self.bundle_url)

    def append_log(self, instance: str, command_id: int, chunk: str) -> str:
        """Store output of a command the agent is running; a finished (or never handed
        out) command takes none: its output is complete."""
        with self.db.tx() as conn:
            command = self._own_command(conn, instance, command_id)
            if command.status != CommandStatus.IN_PROGRESS.value:
                raise CommandFinished(command_id, command.status)
            place = store.LogPlace(
                command.id, command.deployment_id, instance, command.command_name
            )
            cap = self.config.max_command_output_bytes
            store.append_log(conn, place, chunk, cap, self.clock())
            return command.status

    async def complete(
        self,
        instance: str,
        command_id: int,
        status: str,
        diagnostics: dict[str, Any],
        *,
        then_next: bool = False,
        noop_events: frozenset[str] = frozenset(),
    ) -> HostCommandView | None:
        """Record a command's result and step its deployment.

        With ``then_next`` (Shipyard's agent asks for it) the host's next event of the
        same deployment, when the step dispatches one, is queued already acknowledged
        and returned: one request per lifecycle event instead of a poll, an
        acknowledgement and a completion. Other work reaches the agent by its poll.

        ``noop_events`` (with ``then_next`` and a success) are the hook events the
        agent has no scripts for in this deployment: one of them dispatched next is
        completed here, as the agent would have reported it, and the host goes on to
        the event after it, so an event with nothing to run costs no request at all.

        The results that arrive in the same event-loop turn share one transaction
        (``group_commit``)."""
        if status not in (CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value):
            raise BadCommandStatus(status)
        succeeded = status == CommandStatus.SUCCEEDED.value
        payload = lifecycle_diagnostics(diagnostics)

        def work(conn: Connection, after: AfterCommit) -> HostCommandView | None:
            return self._complete_in(
                conn, after, instance, command_id, succeeded, payload, then_next, noop_events
            )

        handed: HostCommandView | None = await self._lifecycle.run(work)
        return handed

    def _complete_in(
        self,
        conn: Connection,
        after: AfterCommit,
        instance: str,
        command_id: int,
        succeeded: bool,
        diagnostics: dict[str, str],
        then_next: bool,
        noop_events: frozenset[str],
    ) -> HostCommandView | None:
        status = (CommandStatus.SUCCEEDED if succeeded else CommandStatus.FAILED).value
        finished = commands.finish_open_command(conn, command_id, instance, status, self.clock())
        repeated = finished is None  # or unknown: _own_command tells
        command = finished or self._own_command(conn, instance, command_id)
        # Applied even for a repeated completion: if the server died between recording
        # the command and stepping the deployment, the agent's retry must still count.
        # The machine ignores a result for an event no longer running.
        done = Completed(
            instance,
            command.command_name,
            succeeded,
            diagnostics,
            agent_waiting=then_next and not self._closing,
        )
        after.handed.pop(instance, None)  # another completion of this batch's
        self.runner.apply_in(conn, command.deployment_id, done, after)
        handed = after.handed.pop(instance, None)
        skip = noop_events if succeeded and not repeated else frozenset()
        while handed is not None and handed[1] in skip:
            handed = self._complete_noop(conn, after, instance, command.deployment_id, handed)
        if handed is not None:
            return HostCommandView(
                handed[0],
                command.deployment_id,
                handed[1],
                execution_id(command.deployment_id, instance),
                acknowledged=True,
            )
        if then_next and repeated:
            # A retried completion: its first answer may have been lost on the way,
            # with the command it carried. That command is acknowledged, so no poll
            # would offer it again: offer it here (an agent that did get it ignores a
            # command it already holds).
            again = commands.handed_after(conn, command)
            return _view(again, instance, acknowledged=True) if again else None
        return None

    def _complete_noop(
        self,
        conn: Connection,
        after: AfterCommit,
        instance: str,
        deployment_id: str,
        handed: tuple[int, str],
    ) -> tuple[int, str] | None:
        """Complete the handed command of an event the agent has nothing to run for,
        with the result it would have sent; the command the step hands on, if any.

        The command is queued and finished all the same, so the host's history reads as
        if the agent had run it: the executor does nothing for a hook without scripts
        (no file written, no output), and the agent said so with the result of the
        event before, with nothing of its own run in between."""
        command_id, event = handed
        commands.finish_open_command(
            conn, command_id, instance, CommandStatus.SUCCEEDED.value, self.clock()
        )
        result = lifecycle_diagnostics(NOOP_REPORT)
        done = Completed(instance, event, True, result, agent_waiting=not self._closing)
        self.runner.apply_in(conn, deployment_id, done, after)
        return after.handed.pop(instance, None)


def _view(
    command: commands.HostCommand, instance: str, *, acknowledged: bool = False
) -> HostCommandView:
    return HostCommandView(
        command.id,
        command.deployment_id,
        command.command_name,
        execution_id(command.deployment_id, instance),
        acknowledged,
    )


def _running(stored: StoredDeployment, instance: str, event: str) -> bool:
    """Whether ``event`` is the one ``instance`` is running in the deployment."""
    target = stored.state.targets.get(instance)
    current = target.current() if target is not None else None
    return (
        current is not None
        and current.name == event
        and current.status == LifecycleEventStatus.IN_PROGRESS
    )


def lifecycle_diagnostics(payload: dict[str, Any]) -> dict[str, str]:
    """The agent's completion payload as a LifecycleEvent ``diagnostics`` member."""
    try:
        code = AGENT_ERROR_CODES[int(payload.get("error_code", 5))]
    except (KeyError, ValueError, TypeError):
        code = AGENT_ERROR_CODES[5]
    log_text = str(payload.get("log", ""))
    tail = log_text.encode()[-LOG_TAIL_BYTES:].decode(errors="ignore")
    return {
        "errorCode": code.value,
        "scriptName": str(payload.get("script_name", "")),
        "message": str(payload.get("message", "")) or code.value,
        "logTail": tail,
    }
