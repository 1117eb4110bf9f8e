"""Waiting on ECS as CloudFormation does: a service or task set is created or updated
once its tasks are steady (running, and healthy behind their target groups), and
deleted once it is gone. Waits are bounded; tasks that keep failing end the wait early
with the reason ECS gave for the last of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipyard.stacks.providers.clients import calling
from shipyard.stacks.providers.protocol import ProviderError

STEADY = "STEADY_STATE"
SCALED_DOWN = "Scaling activity"  # how ECS says it stopped a surplus task, not a failure


@dataclass(frozen=True)
class Patience:
    poll_seconds: float = 1.0
    steady_seconds: float = 900.0  # tasks started, running and healthy
    gone_seconds: float = 900.0  # a deleted service or task set drained
    failed_tasks: int = 3  # failed tasks of one task set that fail the resource


# (task set or deployment id, steady, what it is doing) for each part still to settle.
Parts = list[tuple[str, bool, str]]


@dataclass
class Failures:
    """Tasks of the service that stopped since the wait began, by task set."""

    ecs: Any
    cluster: dict[str, Any]
    service: str
    seen: set[str] = field(default_factory=set)
    failed: dict[str, list[str]] = field(default_factory=dict)

    def start(self) -> Failures:
        self.seen = set(self._stopped())
        return self

    def _stopped(self) -> list[str]:
        pages = self.ecs.get_paginator("list_tasks").paginate(
            **self.cluster, serviceName=self.service, desiredStatus="STOPPED"
        )
        found = calling("ListTasks", lambda: [arn for page in pages for arn in page["taskArns"]])
        return list(found)

    def look(self) -> None:
        fresh = [arn for arn in self._stopped() if arn not in self.seen]
        self.seen.update(fresh)
        for start in range(0, len(fresh), 100):
            for task in self._describe(fresh[start : start + 100]):
                reason = str(task.get("stoppedReason") or task.get("stopCode") or "stopped")
                if not reason.startswith(SCALED_DOWN):
                    self.failed.setdefault(task.get("startedBy", ""), []).append(reason)

    def _describe(self, arns: list[str]) -> list[dict[str, Any]]:
        found = calling(
            "DescribeTasks", lambda: self.ecs.describe_tasks(**self.cluster, tasks=arns)
        )
        return list(found["tasks"])


def wait_steady(
    patience: Patience, what: str, parts: Callable[[], Parts], failures: Failures
) -> None:
    deadline = time.monotonic() + patience.steady_seconds
    while True:
        found = parts()
        if all(steady for _, steady, _ in found):
            return
        failures.look()
        for part, steady, _ in found:
            reasons = failures.failed.get(part, [])
            if not steady and len(reasons) >= patience.failed_tasks:
                raise ProviderError(
                    f"{what} did not stabilize: {len(reasons)} tasks failed; the last: "
                    f"{reasons[-1]}"
                )
        if time.monotonic() >= deadline:
            doing = "; ".join(text for _, steady, text in found if not steady)
            raise ProviderError(
                f"{what} did not stabilize in {patience.steady_seconds:g} s ({doing})"
            )
        time.sleep(patience.poll_seconds)


def wait_gone(patience: Patience, what: str, gone: Callable[[], bool]) -> None:
    deadline = time.monotonic() + patience.gone_seconds
    while not gone():
        if time.monotonic() >= deadline:
            raise ProviderError(f"{what} was not gone {patience.gone_seconds:g} s after deletion")
        time.sleep(patience.poll_seconds)


def task_set_part(task_set: dict[str, Any]) -> tuple[str, bool, str]:
    running, desired = task_set.get("runningCount", 0), task_set.get("computedDesiredCount", 0)
    steady = (
        task_set.get("stabilityStatus") == STEADY
        and running >= desired
        and not task_set.get("pendingCount")
    )
    return str(task_set["id"]), steady, f"task set {task_set['id']}: {running} of {desired} running"


def service_parts(service: dict[str, Any]) -> Parts:
    """What must settle: the ECS controller's primary deployment (a failed rollout fails
    the wait at once), or every task set not draining."""
    if service.get("deploymentController", {}).get("type", "ECS") != "ECS":
        return [
            task_set_part(ts) for ts in service.get("taskSets", []) if ts["status"] != "DRAINING"
        ]
    parts = []
    for deployment in service.get("deployments", []):
        if deployment.get("status") != "PRIMARY":
            continue
        state = deployment.get("rolloutState")
        if state == "FAILED":
            raise ProviderError(
                f"ECS deployment {deployment['id']} failed: "
                f"{deployment.get('rolloutStateReason') or 'no reason given'}"
            )
        running, desired = deployment.get("runningCount", 0), deployment.get("desiredCount", 0)
        parts.append(
            (
                str(deployment["id"]),
                state == "COMPLETED",
                f"deployment {deployment['id']}: {running} of {desired} running",
            )
        )
    return parts
