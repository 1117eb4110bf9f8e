"""Rollbacks: a new deployment of the group's last successful revision (reference §4.4),
linked both ways through rollbackInfo.

Pure builders over a ``RollbackSnapshot`` the runner reads: ``automatic`` when the
machine asks for a rollback, ``manual_revision`` and ``manual_request`` for
``shipyard rollback`` (and its emergency mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.engine.launch import LaunchRequest
from shipyard.engine.state import Label, StoredDeployment, Strategy
from shipyard.errors import ShipyardError
from shipyard.model import DeploymentCreator, LifecycleEventStatus

NOTHING_TO_ROLL_BACK = (
    "Automatic rollback is not possible: deployment group {group} has no successful "
    "deployment to go back to."
)


class RollbackError(ShipyardError):
    """A manual rollback cannot be done; the message says why."""


@dataclass(frozen=True)
class RollbackSnapshot:
    group: dict[str, Any] | None  # deploymentGroupInfo, None when it is gone
    config: dict[str, Any] | None  # the deployment config the rollback runs with
    last_success: StoredDeployment | None  # the group's last successful deployment


def touched_targets(stored: StoredDeployment) -> tuple[str, ...]:
    """Hosts where the deployment ran at least one event."""
    return tuple(
        target.target_id
        for target in stored.state.targets.values()
        if any(
            event.status not in (LifecycleEventStatus.PENDING, LifecycleEventStatus.SKIPPED)
            for event in target.events
        )
    )


def _last_good_behavior(snapshot: RollbackSnapshot) -> str:
    """The file-exists behaviour of the last successful deployment, which a rollback reuses."""
    previous = snapshot.last_success
    return str(previous.info.get("fileExistsBehavior", "DISALLOW")) if previous else "DISALLOW"


def link(failed: StoredDeployment, rollback: StoredDeployment, message: str) -> None:
    failed.info["rollbackInfo"] = {
        "rollbackDeploymentId": rollback.state.deployment_id,
        "rollbackMessage": message,
    }
    rollback.info["rollbackInfo"] = {
        "rollbackTriggeringDeploymentId": failed.state.deployment_id,
        "rollbackMessage": message,
    }


def link_message(failed: StoredDeployment, rollback_id: str) -> str:
    if failed.state.strategy == Strategy.BLUE_GREEN:
        return f"Traffic moved back to the original instances in {rollback_id}"
    return f"Rolled back to the last successful revision in {rollback_id}"


def _traffic_moved(failed: StoredDeployment) -> tuple[str, ...]:
    """Blue/green: the replacement hosts that began taking traffic."""
    moved = []
    for target in failed.state.targets.values():
        allow = next((e for e in target.events if e.name == "AllowTraffic"), None)
        started = allow is not None and allow.status not in (
            LifecycleEventStatus.PENDING,
            LifecycleEventStatus.SKIPPED,
        )
        if target.label == Label.GREEN and started:
            moved.append(target.target_id)
    return tuple(moved)


def automatic(failed: StoredDeployment, snapshot: RollbackSnapshot) -> LaunchRequest | str:
    """The rollback of a deployment that just ended, or the message saying why none."""
    if failed.state.strategy == Strategy.BLUE_GREEN:
        return _blue_green(failed, snapshot)
    if failed.state.strategy == Strategy.TRAFFIC_SHIFT:
        return shifted_back(failed)
    group = snapshot.group
    revision = (group or {}).get("targetRevision")
    if group is None or not revision:
        return NOTHING_TO_ROLL_BACK.format(group=failed.group_name)
    if snapshot.config is None:
        return "The deployment config is gone"
    return LaunchRequest(
        app_name=failed.application_name,
        group=group,
        config=snapshot.config,
        revision=revision,
        creator=DeploymentCreator.ROLLBACK.value,
        description=f"Rollback of {failed.state.deployment_id}",
        file_exists_behavior=_last_good_behavior(snapshot),
        ignore_application_stop_failures=failed.state.ignore_application_stop_failures,
        only_targets=touched_targets(failed),
    )


def _blue_green(failed: StoredDeployment, snapshot: RollbackSnapshot) -> LaunchRequest | str:
    """Traffic goes back to the original hosts while they still exist."""
    green = _traffic_moved(failed)
    if not green:
        return "No rollback needed: traffic never left the original instances."
    if snapshot.group is None or snapshot.config is None:
        return "The deployment group is gone"
    blue = tuple(t.target_id for t in failed.state.targets.values() if t.label == Label.BLUE)
    return LaunchRequest(
        app_name=failed.application_name,
        group=snapshot.group,
        config=snapshot.config,
        revision=snapshot.group.get("targetRevision") or failed.info["revision"],
        creator=DeploymentCreator.ROLLBACK.value,
        description=f"Rollback of {failed.state.deployment_id}",
        allow_hosts=blue,
        block_hosts=green,
    )


def shifted_back(failed: StoredDeployment) -> str:
    """A traffic shift rolls back within the deployment: on a failure or a stop the
    strategy moves every share of traffic back to the original version before the
    deployment ends, so there is nothing left to redeploy; the rollback is recorded."""
    if failed.state.shift_started is None:
        return "No rollback needed: traffic never left the original version."
    moved = list(failed.state.targets)
    return f"Rolled back: all traffic of {', '.join(moved)} shifted back to the original version."


def manual_revision(group: dict[str, Any], snapshot: RollbackSnapshot) -> dict[str, Any]:
    """The revision a manual rollback goes to when nothing is running: the last good
    one if the last attempt failed, else the good one before it."""
    last_good = group.get("targetRevision")
    attempted = group.get("lastAttemptedDeployment") or {}
    if attempted.get("status") != "Succeeded" and last_good:
        return dict(last_good)
    previous = snapshot.last_success
    if previous is not None and previous.info.get("previousRevision"):
        return dict(previous.info["previousRevision"])
    raise RollbackError(
        f"deployment group {group['deploymentGroupName']} has no earlier successful "
        "revision to roll back to"
    )


EMERGENCY_CONFIG = "CodeDeployDefault.AllAtOnce"


def manual_config_name(group: dict[str, Any], *, emergency: bool = False) -> str:
    """The group's config for a manual rollback; an emergency one redeploys every host at once."""
    if emergency:
        return EMERGENCY_CONFIG
    return str(group.get("deploymentConfigName") or "CodeDeployDefault.OneAtATime")


def manual_request(
    app: str,
    group: dict[str, Any],
    revision: dict[str, Any],
    snapshot: RollbackSnapshot,
    *,
    emergency: bool,
) -> LaunchRequest:
    if group.get("computePlatform") == "Lambda":
        # Its rollback is the running deployment's shift back; a redeployment of an old
        # appspec would name versions the alias no longer points at.
        raise RollbackError(
            f"deployment group {group['deploymentGroupName']} has no Lambda deployment "
            "running to shift back; deploy the version you want with a new appspec"
        )
    if snapshot.config is None:
        raise RollbackError(
            f"deployment config {manual_config_name(group, emergency=emergency)} does not exist"
        )
    return LaunchRequest(
        app_name=app,
        group=group,
        config=snapshot.config,
        revision=revision,
        creator=DeploymentCreator.ROLLBACK.value,
        description="Emergency rollback" if emergency else "Manual rollback",
        file_exists_behavior=_last_good_behavior(snapshot),
        ignore_application_stop_failures=emergency,
        only_targets=None,
        skip_stop_events=emergency,
    )
