"""What the machine is told (inputs: things that happened) and what it answers
(actions: things the runner must do). Plain frozen data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.model import DeploymentStatus

# ---- inputs: things that happened ------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The deployment was created and its targets chosen."""


@dataclass(frozen=True)
class Acknowledged:
    """The agent picked up the command for ``event`` on ``target_id``."""

    target_id: str
    event: str


@dataclass(frozen=True)
class Completed:
    """The agent (or the server itself) finished ``event`` on ``target_id``."""

    target_id: str
    event: str
    succeeded: bool
    diagnostics: dict[str, str] = field(default_factory=dict)
    # The agent waits on this very answer for its next command (Shipyard's agent): a
    # next event for the host is handed over, and so acknowledged, at once.
    agent_waiting: bool = False


@dataclass(frozen=True)
class Tick:
    """Time passed: deadlines may have run out."""


@dataclass(frozen=True)
class StopRequested:
    """A user asked to stop the deployment; ``rollback`` is StopDeployment's
    autoRollbackEnabled (None: the deployment's rollback configuration decides)."""

    rollback: bool | None = None
    # Emergency: do not wait for the events in flight; their hosts count as failed.
    abandon: bool = False


@dataclass(frozen=True)
class AlarmFired:
    """An alarm of the deployment is in ALARM (or could not be read and must be)."""

    name: str
    message: str


@dataclass(frozen=True)
class AgentSilent:
    """The agent of ``target_id`` has not polled for ``seconds``: its host is lost."""

    target_id: str
    seconds: float


@dataclass(frozen=True)
class Paused:
    """Start no more hosts until resumed; hosts in flight finish their events."""


@dataclass(frozen=True)
class Resumed:
    """Go on starting hosts."""


@dataclass(frozen=True)
class Continued:
    """ContinueDeployment: READY_WAIT (reroute now) or TERMINATION_WAIT (retire now)."""

    wait_type: str


@dataclass(frozen=True)
class Approved:
    """Someone approved the deployment to move traffic."""


# ---- actions: what the runner must do ---------------------------------------------


@dataclass(frozen=True)
class Dispatch:
    """Send the command for ``event`` to the agent of ``target_id``."""

    target_id: str
    event: str
    # Handed to the waiting agent with its last result: already acknowledged.
    acknowledged: bool = False


@dataclass(frozen=True)
class Finished:
    """The deployment reached a terminal status."""

    status: DeploymentStatus


@dataclass(frozen=True)
class StartRollback:
    """Redeploy the group's last successful revision as a new deployment."""


@dataclass(frozen=True)
class Notify:
    """A trigger event (TriggerEventType) happened, for the deployment or one target."""

    event: str
    target_id: str | None = None


@dataclass(frozen=True)
class RestoreTraffic:
    """A host failed with its traffic blocked: put it back only if it is healthy."""

    target_id: str


@dataclass(frozen=True)
class RetireHosts:
    """Blue/green TERMINATE: the original hosts leave the fleet (deregistered). After
    a traffic shift (ECS), each target's original revision is retired: answered by a
    Retired input."""

    target_ids: tuple[str, ...]


@dataclass(frozen=True)
class HookReported:
    """A hook the server invoked (a function) reported its result for ``event``
    (PutLifecycleEventHookExecutionStatus), or its wait for a report ran out."""

    target_id: str
    event: str
    succeeded: bool
    message: str = ""


@dataclass(frozen=True)
class TrafficShifted:
    """The router applied (or failed to apply) a ShiftTraffic action."""

    target_id: str
    target_weight: int
    succeeded: bool
    message: str = ""


@dataclass(frozen=True)
class Retired:
    """The original revision was retired after a traffic shift (ECS: the replacement
    task set made primary and the original deleted), or could not be."""

    target_id: str
    succeeded: bool
    message: str = ""


@dataclass(frozen=True)
class ShiftTraffic:
    """Route ``target_weight`` percent of ``target_id``'s traffic to the new revision
    and the rest to the original one; answered by a TrafficShifted input."""

    target_id: str
    target_weight: int


Input = (
    Start
    | Acknowledged
    | Completed
    | Tick
    | StopRequested
    | AlarmFired
    | AgentSilent
    | Paused
    | Resumed
    | Approved
    | Continued
    | HookReported
    | TrafficShifted
    | Retired
)


Action = Dispatch | Finished | StartRollback | Notify | RestoreTraffic | RetireHosts | ShiftTraffic


@dataclass
class Outcome:
    """What one step decided: actions for the runner, and what it must write."""

    actions: list[Action] = field(default_factory=list)
    changed_targets: set[str] = field(default_factory=set)
    changed: bool = False

    def touch(self, target_id: str) -> None:
        self.changed_targets.add(target_id)
        self.changed = True
