"""Building a new deployment: its targets, schedule, health rule and static info.

Shared by CreateDeployment and by the runner when it starts a rollback. It reads the
store through the connection it is given (targets, host health, alarm bake times)
but decides nothing about the deployment's course: that is the machine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

import shipyard.store.alarms as alarm_store
from shipyard.engine import machine, plan
from shipyard.engine.lifecycle import STOP_EVENTS, events_for
from shipyard.engine.state import DeploymentState
from shipyard.model import DeploymentCreator, DeploymentStatus, new_deployment_id
from shipyard.store import deployments as store
from shipyard.store import resources


@dataclass(frozen=True)
class LaunchRequest:
    app_name: str
    group: dict[str, Any]  # deploymentGroupInfo
    config: dict[str, Any]  # deploymentConfigInfo
    revision: dict[str, Any]
    creator: str = DeploymentCreator.USER.value
    description: str = ""
    file_exists_behavior: str = "DISALLOW"
    ignore_application_stop_failures: bool = False
    update_outdated_only: bool = False
    deployment_mode: str = "STANDARD"
    auto_rollback: dict[str, Any] | None = None  # autoRollbackConfiguration
    alarm_configuration: dict[str, Any] | None = None
    # A rollback goes only to the hosts the failed deployment touched.
    only_targets: tuple[str, ...] | None = None
    # Emergency rollback: the failed revision's stop scripts may be what is broken.
    skip_stop_events: bool = False


def _rollback_events(auto_rollback: dict[str, Any] | None) -> list[str]:
    if not auto_rollback or not auto_rollback.get("enabled"):
        return []
    return list(auto_rollback.get("events") or [])


def build(
    conn: Connection, request: LaunchRequest, now: float, event_timeout: float
) -> store.StoredDeployment:
    group = request.group
    group_name = group["deploymentGroupName"]
    instances = resources.instances_for_group(conn, group)
    if request.only_targets is not None:
        wanted = set(request.only_targets)
        instances = [name for name in instances if name in wanted]
    health = store.instance_health(conn, request.app_name, group_name, instances, request.revision)
    if request.update_outdated_only:
        instances = [name for name in instances if health[name] != "current"]
    ordered = plan.order_hosts([(name, health[name]) for name in instances])
    style = group.get("deploymentStyle") or {}
    deployment_type = style.get("deploymentType", "IN_PLACE")
    deployment_option = style.get("deploymentOption", "WITHOUT_TRAFFIC_CONTROL")
    events = events_for(deployment_type, deployment_option)
    if request.skip_stop_events:
        events = tuple(e for e in events if e not in STOP_EVENTS)
    alarm_config = request.alarm_configuration or group.get("alarmConfiguration") or {}
    alarm_names = [a["name"] for a in alarm_config.get("alarms") or []]
    bake = alarm_store.bake_seconds(conn, alarm_names) if alarm_config.get("enabled") else 0.0
    auto_rollback = request.auto_rollback or group.get("autoRollbackConfiguration")
    state = DeploymentState(
        deployment_id=new_deployment_id(),
        status=DeploymentStatus.CREATED,
        health_rule=dict(request.config["minimumHealthyHosts"]),
        event_timeout=event_timeout,
        ignore_application_stop_failures=request.ignore_application_stop_failures,
        create_time=now,
        auto_rollback_events=_rollback_events(auto_rollback),
        is_rollback=request.creator == DeploymentCreator.ROLLBACK.value,
        bake_seconds=bake,
        awaiting_approval=bool((group.get("shipyardOptions") or {}).get("requireApproval")),
        targets={name: machine.new_target(name, events) for name in ordered},
    )
    info: dict[str, Any] = {
        "deploymentConfigName": request.config["deploymentConfigName"],
        "deploymentGroupId": group["deploymentGroupId"],
        "revision": request.revision,
        "creator": request.creator,
        "description": request.description,
        "ignoreApplicationStopFailures": request.ignore_application_stop_failures,
        "updateOutdatedInstancesOnly": request.update_outdated_only,
        "fileExistsBehavior": request.file_exists_behavior,
        "deploymentStyle": {
            "deploymentType": deployment_type,
            "deploymentOption": deployment_option,
        },
        "computePlatform": "Server",
        "deploymentStatusMessages": [],
        "targetOrder": ordered,
    }
    if request.deployment_mode == "RESTART":
        info["deploymentMode"] = "RESTART"
    if group.get("targetRevision"):
        info["previousRevision"] = group["targetRevision"]
    if auto_rollback:
        info["autoRollbackConfiguration"] = auto_rollback
    if alarm_config:
        info["alarmConfiguration"] = alarm_config
    if request.alarm_configuration:
        info["overrideAlarmConfiguration"] = request.alarm_configuration
    if group.get("loadBalancerInfo"):
        info["loadBalancerInfo"] = group["loadBalancerInfo"]
    return store.StoredDeployment(state, info, request.app_name, group_name)


def record_start(conn: Connection, stored: store.StoredDeployment, now: float) -> None:
    """The group's lastAttemptedDeployment and the revision's use times."""
    state = stored.state
    resources.record_revision_use(conn, stored.application_name, stored.info["revision"], now)
    resources.update_deployment_group_doc(
        conn,
        stored.application_name,
        stored.group_name,
        {
            "lastAttemptedDeployment": {
                "deploymentId": state.deployment_id,
                "status": state.status.value,
                "createTime": state.create_time,
            }
        },
    )
