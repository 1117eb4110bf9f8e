"""Following a deployment from the command line: ``deploy``, ``rollback``,
``status --watch`` and ``logs --follow``.

On a terminal the live view (``screen.fit``) is redrawn in place; otherwise, or when
hook output is streamed, only changes are printed, one line each, which suits logs, CI
and pipes. A deployment that ends by starting an automatic rollback is followed into
that rollback. Ctrl-C stops the following only: ``interrupted`` says so and how to come back.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from shipyard.cli import progress, screen
from shipyard.cli.client import EXIT_INTERRUPTED, CliError, ShipyardClient

POLL_INTERVAL = 0.2  # seconds between GetDeployment calls while following a deployment
LOG_OPERATION = "ShipyardGetLifecycleEventLog"

Deployment = dict[str, Any]
Targets = list[dict[str, Any]]


def interrupted(deployment_id: str, what: str = "deployment") -> CliError:
    """What Ctrl-C while following means: the server carries on; how to come back."""
    return CliError(
        f"stopped following {deployment_id}; the {what} goes on on the server "
        f"(re-attach: shipyard status {deployment_id} --watch; "
        f"stop it: shipyard stop {deployment_id})",
        EXIT_INTERRUPTED,
    )


class LogTail:
    """Prints hook output as it arrives: only what was not printed before."""

    def __init__(self, client: ShipyardClient, deployment_id: str, out: TextIO) -> None:
        self.client = client
        self.deployment_id = deployment_id
        self.out = out
        self.printed: dict[tuple[str, str], int] = {}

    def poll(self, raw_targets: Sequence[Mapping[str, Any]]) -> None:
        for target in map(progress.target_of, raw_targets):
            if not any(e.get("status") not in (None, "Pending") for e in target.events):
                continue
            answer = self.client.call_extension(
                LOG_OPERATION, {"deploymentId": self.deployment_id, "targetId": target.target_id}
            )
            for event in answer.get("events", []):
                self._print_new(target.target_id, event)

    def _print_new(self, target_id: str, event: Mapping[str, Any]) -> None:
        log = str(event.get("log") or "")
        key = (target_id, str(event.get("lifecycleEventName", "?")))
        done = self.printed.get(key, 0)
        if len(log) <= done:
            return
        # Only whole lines: the rest comes with the next poll.
        end = log.rfind("\n", done) + 1
        if end <= done:
            return
        for line in log[done:end].splitlines():
            self.out.write(f"{key[0]} {key[1]}| {line}\n")
        self.printed[key] = end


def _poll(client: ShipyardClient, deployment_id: str) -> tuple[Deployment, Targets]:
    deployment = client.api("GetDeployment", deploymentId=deployment_id)["deploymentInfo"]
    return deployment, client.deployment_targets(deployment_id)


def follow(
    client: ShipyardClient,
    deployment_id: str,
    out: TextIO,
    *,
    logs: bool = False,
    now: Callable[[], float] = time.time,
) -> tuple[Deployment, Targets]:
    """Show a deployment's progress until it ends; return its final state and targets."""
    interactive = out.isatty() and not logs
    tail = LogTail(client, deployment_id, out) if logs else None
    redrawer = screen.Redrawer(out)
    previous: progress.Snapshot = {}
    reasons: list[str] = []
    while True:
        deployment, targets = _poll(client, deployment_id)
        stamp = now()
        if interactive:
            size = shutil.get_terminal_size()
            view = screen.fit(
                deployment, targets, stamp, width=size.columns, height=size.lines, colour=True
            )
            redrawer.draw(view)
        else:
            changes, previous = progress.change_lines(previous, deployment, targets, stamp)
            now_waiting = progress.wait_reasons(deployment)
            changes += [f"  waiting: {r}" for r in now_waiting if r not in reasons]
            reasons = now_waiting
            out.write("".join(f"{line}\n" for line in changes))
            if tail is not None:
                tail.poll(targets)
        out.flush()
        if deployment.get("status") in progress.TERMINAL_STATUSES:
            return deployment, targets
        time.sleep(POLL_INTERVAL)


def follow_with_rollback(
    client: ShipyardClient, deployment_id: str, out: TextIO, *, logs: bool = False
) -> tuple[Deployment, Targets]:
    """Follow a deployment and, if it started an automatic rollback, the rollback too.

    The report of each is printed as it ends; what is returned is the last one followed.
    """
    current = deployment_id
    while True:
        try:
            deployment, targets = follow(client, current, out, logs=logs)
        except KeyboardInterrupt:
            raise interrupted(current) from None
        report(deployment, targets, out)
        rollback_id = (deployment.get("rollbackInfo") or {}).get("rollbackDeploymentId")
        if not rollback_id or deployment.get("status") == "Succeeded":
            return deployment, targets
        rollback = client.api("GetDeployment", deploymentId=rollback_id)["deploymentInfo"]
        out.write(
            f"\n{current} started automatic rollback {rollback_id}, returning the hosts to "
            f"{progress.format_revision(rollback.get('revision'))}; following it\n"
        )
        current = rollback_id


def report(deployment: Deployment, targets: Targets, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(
        "".join(f"{line}\n" for line in progress.final_report(deployment, targets, time.time()))
    )
    out.flush()


def exit_status(deployment: Mapping[str, Any]) -> int:
    """0 for a deployment that succeeded, 1 for one that failed or was stopped."""
    return 0 if deployment.get("status") == "Succeeded" else 1
