"""A deployment's state as the engine sees it, and its JSON form for the store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from shipyard.engine.status_tally import StatusTally
from shipyard.model import DeploymentStatus, LifecycleEventStatus, TargetStatus

# What the server ran before platforms named their server events (stored states).
_SERVER_TRAFFIC_EVENTS = ("BlockTraffic", "AllowTraffic")


class Strategy(StrEnum):
    """How a deployment advances; the machine picks its strategy module by this."""

    IN_PLACE = "in_place"  # batches of hosts under the minimum-healthy-hosts rule
    BLUE_GREEN = "blue_green"  # replacement hosts install, then traffic moves, in phases
    TRAFFIC_SHIFT = "traffic_shift"  # one target's traffic shifted by weight on a schedule


class Phase(StrEnum):
    """Blue/green: the phase whose events may run now."""

    INSTALL = "install"
    ALLOW = "allow"
    BLOCK = "block"
    TERMINATE = "terminate"


class Label(StrEnum):
    """Blue/green: which fleet a host belongs to (as DeploymentTarget lifecycle labels)."""

    BLUE = "Blue"  # the original hosts
    GREEN = "Green"  # the replacement hosts


class StopReason(StrEnum):
    """Why a deployment was asked to stop."""

    MANUAL = "MANUAL"  # StopDeployment, or shipyard rollback
    ALARM = "ALARM"  # an alarm of the deployment fired
    READY_TIMEOUT = "READY_TIMEOUT"  # nobody continued a blue/green ready wait in time


@dataclass
class EventState:
    name: str
    status: LifecycleEventStatus = LifecycleEventStatus.PENDING
    start_time: float | None = None
    end_time: float | None = None
    # {errorCode, scriptName, message, logTail} once the event has a result
    diagnostics: dict[str, str] | None = None


@dataclass
class TargetState:
    target_id: str
    events: list[EventState]
    status: TargetStatus = TargetStatus.PENDING
    last_updated: float = 0.0
    # When the server gives up waiting for the in-flight event's result.
    deadline: float | None = None
    label: Label | None = None  # blue/green only

    def current(self) -> EventState | None:
        """The first event that has not finished, if any."""
        for event in self.events:
            if event.status in (LifecycleEventStatus.PENDING, LifecycleEventStatus.IN_PROGRESS):
                return event
        return None

    @property
    def in_flight(self) -> bool:
        return self.status == TargetStatus.IN_PROGRESS

    def to_doc(self) -> dict[str, Any]:
        # Written out by hand: dataclasses.asdict deep-copies recursively, and this
        # runs on every lifecycle event.
        return {
            "target_id": self.target_id,
            "events": [
                {
                    "name": e.name,
                    "status": e.status,
                    "start_time": e.start_time,
                    "end_time": e.end_time,
                    "diagnostics": e.diagnostics,
                }
                for e in self.events
            ],
            "status": self.status,
            "last_updated": self.last_updated,
            "deadline": self.deadline,
            "label": self.label,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TargetState:
        events = [
            EventState(
                name=e["name"],
                status=LifecycleEventStatus(e["status"]),
                start_time=e.get("start_time"),
                end_time=e.get("end_time"),
                diagnostics=e.get("diagnostics"),
            )
            for e in doc["events"]
        ]
        return cls(
            target_id=doc["target_id"],
            events=events,
            status=TargetStatus(doc["status"]),
            last_updated=doc.get("last_updated", 0.0),
            deadline=doc.get("deadline"),
            label=Label(doc["label"]) if doc.get("label") else None,
        )


@dataclass
class DeploymentState:
    """Everything the engine decides on. ``targets`` keeps the scheduling order."""

    deployment_id: str
    status: DeploymentStatus
    health_rule: dict[str, Any]  # {"type": ..., "value": ...}
    event_timeout: float
    ignore_application_stop_failures: bool = False
    create_time: float = 0.0
    start_time: float | None = None
    complete_time: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    stop_requested: bool = False
    stop_reason: StopReason | None = None
    # StopDeployment's autoRollbackEnabled, when the caller gave it.
    rollback_on_stop: bool | None = None
    # AutoRollbackEvent values that start a rollback (empty: rollback disabled).
    auto_rollback_events: list[str] = field(default_factory=list)
    is_rollback: bool = False
    # After every host succeeded, watch alarms this long before Succeeded (Baking).
    bake_seconds: float = 0.0
    bake_until: float | None = None
    # No new host starts while paused (between batches) or before an approval.
    paused: bool = False
    awaiting_approval: bool = False
    strategy: Strategy = Strategy.IN_PLACE
    # The events the server carries out itself (traffic, hook functions); the platform
    # names them at launch. Every other event is sent to the host's agent.
    server_events: list[str] = field(default_factory=list)
    # Blue/green: the phase whose events may run now; None for the other strategies,
    # where events are never gated.
    phase: Phase | None = None
    # Blue/green options (blueGreenDeploymentConfiguration, in seconds).
    ready_wait: float | None = None  # None: reroute at once; else wait for ContinueDeployment
    ready_until: float | None = None
    terminate_wait: float | None = None  # None: KEEP_ALIVE; else TERMINATE after this
    terminate_at: float | None = None
    # Traffic shift (ECS): the original revision is being retired after the wait.
    retiring: bool = False
    # Traffic shift: the trafficRoutingConfig, when the shift began, the target's
    # weight now (percent) and when the next step of the schedule is due.
    routing: dict[str, Any] | None = None
    shift_started: float | None = None
    shift_weight: int = 0
    shift_next_at: float | None = None
    # Traffic shift: how many seconds one "minute" of the routing config lasts.
    minute_seconds: float = 60.0
    targets: dict[str, TargetState] = field(default_factory=dict)
    # Kept in memory only, never stored: in place's per-status counts (status_tally.py).
    tally: StatusTally | None = field(default=None, init=False, repr=False, compare=False)

    def status_counts(self, touched: Iterable[str]) -> Counter[TargetStatus]:
        """The targets' counts per status, ``touched`` (changed since the last call by
        this step) counted again."""
        if self.tally is None or not self.tally.covers(self.targets):
            self.tally = StatusTally(self.targets)
        else:
            self.tally.refresh(self.targets, touched)
        return self.tally.counts

    def header_doc(self) -> dict[str, Any]:
        """The deployment-level part, without targets (stored in their own rows)."""
        doc = {name: getattr(self, name) for name in _HEADER_FIELDS}
        doc["status"] = self.status.value
        return doc

    @classmethod
    def from_docs(cls, header: dict[str, Any], targets: list[TargetState]) -> DeploymentState:
        fields = dict(header)
        fields["status"] = DeploymentStatus(fields["status"])
        if fields.get("phase"):
            fields["phase"] = Phase(fields["phase"])
        if fields.get("stop_reason"):
            fields["stop_reason"] = StopReason(fields["stop_reason"])
        # Stored before strategies had a name: a phase meant blue/green.
        default = Strategy.BLUE_GREEN if fields.get("phase") else Strategy.IN_PLACE
        fields["strategy"] = Strategy(fields.get("strategy") or default)
        fields.setdefault("server_events", list(_SERVER_TRAFFIC_EVENTS))
        return cls(**fields, targets={t.target_id: t for t in targets})


# Every step saves the header: its field names are listed once, not per call.
_HEADER_FIELDS = tuple(
    f.name for f in fields(DeploymentState) if f.name not in ("targets", "tally")
)


@dataclass
class StoredDeployment:
    """A deployment as the store keeps it: the engine's state plus the static
    deploymentInfo members and the names it belongs to."""

    state: DeploymentState
    info: dict[str, Any]  # the static deploymentInfo members (revision, creator, ...)
    application_name: str
    group_name: str
    # The deployment-level state as last read or written (JSON): a step that changed
    # only a host leaves it alone, and then only the row's version is bumped.
    saved_header: str | None = field(default=None, compare=False, repr=False)
