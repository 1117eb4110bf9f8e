"""Rollbacks: a new deployment of the group's last successful revision (reference §4.4),
linked both ways through rollbackInfo.

``start`` runs inside the runner's transaction when the machine asks for a rollback;
``manual`` serves ``shipyard rollback`` (and its emergency mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from shipyard.engine.launch import LaunchRequest
from shipyard.model import DeploymentCreator, LifecycleEventStatus
from shipyard.store import deployments as store
from shipyard.store import resources

Launch = Callable[[LaunchRequest], store.StoredDeployment]

NOTHING_TO_ROLL_BACK = (
    "Automatic rollback is not possible: deployment group {group} has no successful "
    "deployment to go back to."
)


def touched_targets(stored: store.StoredDeployment) -> tuple[str, ...]:
    """Hosts where the deployment ran at least one event."""
    return tuple(
        target.target_id
        for target in stored.state.targets.values()
        if any(
            event.status not in (LifecycleEventStatus.PENDING, LifecycleEventStatus.SKIPPED)
            for event in target.events
        )
    )


def _last_good_behavior(conn: Connection, group: dict[str, Any]) -> str:
    """The file-exists behaviour of the last successful deployment, which a rollback reuses."""
    last = (group.get("lastSuccessfulDeployment") or {}).get("deploymentId")
    previous = store.load(conn, last) if last else None
    return str(previous.info.get("fileExistsBehavior", "DISALLOW")) if previous else "DISALLOW"


def _request(
    conn: Connection,
    group: dict[str, Any],
    app: str,
    revision: dict[str, Any],
    config_name: str,
    *,
    description: str,
    only_targets: tuple[str, ...] | None,
    ignore_stop_failures: bool,
    emergency: bool,
) -> LaunchRequest | None:
    config = resources.get_deployment_config(conn, config_name)
    if config is None:
        return None
    return LaunchRequest(
        app_name=app,
        group=group,
        config=config,
        revision=revision,
        creator=DeploymentCreator.ROLLBACK.value,
        description=description,
        file_exists_behavior=_last_good_behavior(conn, group),
        ignore_application_stop_failures=ignore_stop_failures,
        only_targets=only_targets,
        skip_stop_events=emergency,
    )


def link(failed: store.StoredDeployment, rollback: store.StoredDeployment, message: str) -> None:
    failed.info["rollbackInfo"] = {
        "rollbackDeploymentId": rollback.state.deployment_id,
        "rollbackMessage": message,
    }
    rollback.info["rollbackInfo"] = {
        "rollbackTriggeringDeploymentId": failed.state.deployment_id,
        "rollbackMessage": message,
    }


def _traffic_moved(failed: store.StoredDeployment) -> tuple[str, ...]:
    """Blue/green: the replacement hosts that began taking traffic."""
    moved = []
    for target in failed.state.targets.values():
        allow = next((e for e in target.events if e.name == "AllowTraffic"), None)
        started = allow is not None and allow.status not in (
            LifecycleEventStatus.PENDING,
            LifecycleEventStatus.SKIPPED,
        )
        if target.label == "Green" and started:
            moved.append(target.target_id)
    return tuple(moved)


def _start_blue_green(conn: Connection, failed: store.StoredDeployment, launch: Launch) -> None:
    """Traffic goes back to the original hosts while they still exist."""
    green = _traffic_moved(failed)
    if not green:
        failed.info["rollbackInfo"] = {
            "rollbackMessage": "No rollback needed: traffic never left the original instances."
        }
        return
    group = resources.get_deployment_group(conn, failed.application_name, failed.group_name)
    config = resources.get_deployment_config(conn, failed.info["deploymentConfigName"])
    if group is None or config is None:
        failed.info["rollbackInfo"] = {"rollbackMessage": "The deployment group is gone"}
        return
    blue = tuple(t.target_id for t in failed.state.targets.values() if t.label == "Blue")
    request = LaunchRequest(
        app_name=failed.application_name,
        group=group,
        config=config,
        revision=group.get("targetRevision") or failed.info["revision"],
        creator=DeploymentCreator.ROLLBACK.value,
        description=f"Rollback of {failed.state.deployment_id}",
        allow_hosts=blue,
        block_hosts=green,
    )
    rollback = launch(request)
    link(
        failed,
        rollback,
        f"Traffic moved back to the original instances in {rollback.state.deployment_id}",
    )
    store.save(conn, rollback)


def start(conn: Connection, failed: store.StoredDeployment, launch: Launch) -> None:
    """Roll back the deployment that just ended, or record why it cannot be."""
    if failed.state.phase is not None:
        _start_blue_green(conn, failed, launch)
        return
    group = resources.get_deployment_group(conn, failed.application_name, failed.group_name)
    revision = (group or {}).get("targetRevision")
    if group is None or not revision:
        failed.info["rollbackInfo"] = {
            "rollbackMessage": NOTHING_TO_ROLL_BACK.format(group=failed.group_name)
        }
        return
    request = _request(
        conn,
        group,
        failed.application_name,
        revision,
        failed.info["deploymentConfigName"],
        description=f"Rollback of {failed.state.deployment_id}",
        only_targets=touched_targets(failed),
        ignore_stop_failures=failed.state.ignore_application_stop_failures,
        emergency=False,
    )
    if request is None:
        failed.info["rollbackInfo"] = {"rollbackMessage": "The deployment config is gone"}
        return
    rollback = launch(request)
    link(
        failed,
        rollback,
        f"Rolled back to the last successful revision in {rollback.state.deployment_id}",
    )
    store.save(conn, rollback)


class RollbackError(Exception):
    """A manual rollback cannot be done; the message says why."""


def manual_revision(conn: Connection, group: dict[str, Any]) -> dict[str, Any]:
    """The revision a manual rollback goes to when nothing is running: the last good
    one if the last attempt failed, else the good one before it."""
    last_good = group.get("targetRevision")
    attempted = group.get("lastAttemptedDeployment") or {}
    if attempted.get("status") != "Succeeded" and last_good:
        return dict(last_good)
    last = (group.get("lastSuccessfulDeployment") or {}).get("deploymentId")
    previous = store.load(conn, last) if last else None
    if previous is not None and previous.info.get("previousRevision"):
        return dict(previous.info["previousRevision"])
    raise RollbackError(
        f"deployment group {group['deploymentGroupName']} has no earlier successful "
        "revision to roll back to"
    )


def manual_request(
    conn: Connection,
    app: str,
    group: dict[str, Any],
    revision: dict[str, Any],
    *,
    emergency: bool,
) -> LaunchRequest:
    config_name = group.get("deploymentConfigName") or "CodeDeployDefault.OneAtATime"
    request = _request(
        conn,
        group,
        app,
        revision,
        config_name,
        description="Emergency rollback" if emergency else "Manual rollback",
        only_targets=None,
        ignore_stop_failures=emergency,
        emergency=emergency,
    )
    if request is None:
        raise RollbackError(f"deployment config {config_name} does not exist")
    return request
