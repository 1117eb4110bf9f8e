"""A deployment's state as the engine sees it, and its JSON form for the store."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from shipyard.model import DeploymentStatus, LifecycleEventStatus, TargetStatus


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
    label: str | None = None  # blue/green: "Blue" (original) or "Green" (replacement)

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
            label=doc.get("label"),
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
    # Why a stop was asked for: "MANUAL" (StopDeployment) or "ALARM".
    stop_reason: str | None = None
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
    # Blue/green: the phase whose events may run now ("install", "allow", "block",
    # "terminate"); None for in-place deployments, where events are never gated.
    phase: str | None = None
    # Blue/green options (blueGreenDeploymentConfiguration, in seconds).
    ready_wait: float | None = None  # None: reroute at once; else wait for ContinueDeployment
    ready_until: float | None = None
    terminate_wait: float | None = None  # None: KEEP_ALIVE; else TERMINATE after this
    terminate_at: float | None = None
    targets: dict[str, TargetState] = field(default_factory=dict)

    def header_doc(self) -> dict[str, Any]:
        """The deployment-level part, without targets (stored in their own rows)."""
        doc = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "targets"}
        doc["status"] = self.status.value
        return doc

    @classmethod
    def from_docs(cls, header: dict[str, Any], targets: list[TargetState]) -> DeploymentState:
        fields = dict(header)
        fields["status"] = DeploymentStatus(fields["status"])
        return cls(**fields, targets={t.target_id: t for t in targets})
