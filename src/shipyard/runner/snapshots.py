"""What the pure builders (launch, rollback, outdated) read from the store, read here
inside the runner's transaction and handed to them as plain values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.engine.launch import LaunchRequest, LaunchSnapshot, alarm_names
from shipyard.engine.outdated import OutdatedSnapshot
from shipyard.engine.rollback import RollbackSnapshot
from shipyard.engine.state import StoredDeployment
from shipyard.store import alarms as alarm_store
from shipyard.store import deployments as store
from shipyard.store import resources


def for_launch(conn: Connection, request: LaunchRequest) -> LaunchSnapshot:
    group = request.group
    names = alarm_names(request)
    bake = alarm_store.bake_seconds(conn, names) if names else 0.0
    own = request.platform_targets
    if own is not None:  # a function alias or a service: no hosts, no host health
        return LaunchSnapshot(own.target_ids, dict.fromkeys(own.target_ids, "unknown"), (), bake)
    instances = resources.instances_for_group(conn, group)
    if request.only_targets is not None:
        wanted = set(request.only_targets)
        instances = [name for name in instances if name in wanted]
    health = store.instance_health(
        conn, request.app_name, group["deploymentGroupName"], instances, request.revision
    )
    green: list[str] = []
    style = group.get("deploymentStyle") or {}
    if style.get("deploymentType") == "BLUE_GREEN" and request.allow_hosts is None:
        filters = (request.target_instances or {}).get("tagFilters")
        green = resources.instances_for_group(conn, {"onPremisesInstanceTagFilters": filters})
    return LaunchSnapshot(tuple(instances), health, tuple(green), bake)


def _last_success(conn: Connection, group: dict[str, Any] | None) -> StoredDeployment | None:
    last = ((group or {}).get("lastSuccessfulDeployment") or {}).get("deploymentId")
    return store.load(conn, last) if last else None


def for_rollback(conn: Connection, app: str, group_name: str, config_name: str) -> RollbackSnapshot:
    group = resources.get_deployment_group(conn, app, group_name)
    config = resources.get_deployment_config(conn, config_name)
    return RollbackSnapshot(group, config, _last_success(conn, group))


def for_outdated(conn: Connection, group: dict[str, Any]) -> OutdatedSnapshot:
    app, name = group["applicationName"], group["deploymentGroupName"]
    members = resources.instances_for_group(conn, group)
    config_name = group.get("deploymentConfigName") or "CodeDeployDefault.OneAtATime"
    return OutdatedSnapshot(
        active=store.active_for_group(conn, app, name),
        heard_from=tuple(store.agents_heard_from(conn, members)),
        done=frozenset(store.targets_of_revision(conn, app, name, group["targetRevision"])),
        root=_last_success(conn, group),
        config=resources.get_deployment_config(conn, config_name),
    )
