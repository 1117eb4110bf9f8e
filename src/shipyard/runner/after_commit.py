"""What a runner transaction leaves to do once it has committed.

Nothing here may happen inside the transaction: an agent woken before the commit
would find no command, a cached state from a transaction that rolled back would be
wrong, and traffic must not move for a step that was never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.state import StoredDeployment

RESTORE = "RestoreTraffic"  # not an event: give a failed target its traffic back
RETIRE = "Retire"  # not an event: retire a target's original revision (a traffic shift)


@dataclass
class AfterCommit:
    wake: set[str] = field(default_factory=set)  # agents with new commands
    # instance -> (command id, event) queued already acknowledged, for the agent
    # waiting on this transaction's answer (Dispatch.acknowledged)
    handed: dict[str, tuple[int, str]] = field(default_factory=dict)
    # the platform's server-run steps: (deployment, target, what) where what is an
    # event name, RESTORE, RETIRE, or a weight to shift to
    steps: list[tuple[StoredDeployment, str, str | int]] = field(default_factory=list)
    # deployment id -> (row version, state) as this transaction wrote it: the cache
    # the next step starts from, and what a second step in the same transaction uses.
    states: dict[str, tuple[int, StoredDeployment]] = field(default_factory=dict)
    recorded: list[Callable[[], None]] = field(default_factory=list)  # metrics to record
    # deployments whose row version this transaction has raised already: once is
    # enough to tell other readers (replicas, GetDeployment) that the row changed
    bumped: set[str] = field(default_factory=set)
    # (application, group) -> the group as this transaction read it for notices
    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
