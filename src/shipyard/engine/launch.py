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
from shipyard.engine import bluegreen, machine, plan
from shipyard.engine.lifecycle import IN_PLACE, STOP_EVENTS, events_for
from shipyard.engine.state import DeploymentState, TargetState
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
    # Blue/green: the replacement hosts' tag filters (CreateDeployment targetInstances).
    target_instances: dict[str, Any] | None = None
    # Blue/green rollback: hosts that take the traffic back, and hosts that give it up.
    allow_hosts: tuple[str, ...] | None = None
    block_hosts: tuple[str, ...] | None = None


def _rollback_events(auto_rollback: dict[str, Any] | None) -> list[str]:
    if not auto_rollback or not auto_rollback.get("enabled"):
        return []
    return list(auto_rollback.get("events") or [])


def build(
    conn: Connection,
    request: LaunchRequest,
    now: float,
    event_timeout: float,
    alarm_poll_seconds: float = 1.0,
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
    if request.creator == DeploymentCreator.ROLLBACK.value:
        # A rollback must not be stopped by the alarm that caused it.
        alarm_config = {}
    alarm_names = [a["name"] for a in alarm_config.get("alarms") or []]
    bake = 0.0
    if alarm_config.get("enabled") and alarm_names:
        # At least one full round of alarm readings after the hosts finish, so a short
        # deployment cannot succeed before its alarms were ever read.
        bake = max(alarm_store.bake_seconds(conn, alarm_names), 2 * alarm_poll_seconds)
    auto_rollback = request.auto_rollback or group.get("autoRollbackConfiguration")
    targets = {name: machine.new_target(name, events) for name in ordered}
    if deployment_type == "BLUE_GREEN":
        targets = _blue_green_targets(conn, request, instances, ordered)
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
        targets=targets,
    )
    if deployment_type == "BLUE_GREEN":
        _blue_green_options(state, group.get("blueGreenDeploymentConfiguration") or {})
        if request.allow_hosts is not None:
            state.phase = "allow"  # a rollback installs nothing
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
    if request.target_instances:
        info["targetInstances"] = request.target_instances
    if deployment_type == "BLUE_GREEN":
        info["blueGreenDeploymentConfiguration"] = group.get("blueGreenDeploymentConfiguration")
        info["instanceTerminationWaitTimeStarted"] = False
        info["targetOrder"] = list(state.targets)
    return store.StoredDeployment(state, info, request.app_name, group_name)


def _blue_green_targets(
    conn: Connection, request: LaunchRequest, group_hosts: list[str], ordered: list[str]
) -> dict[str, TargetState]:
    """Green (replacement) hosts install then take traffic; blue (original) hosts give
    it up. A rollback swaps the roles and installs nothing."""
    targets: dict[str, TargetState] = {}
    if request.allow_hosts is not None:
        for name in request.allow_hosts:
            targets[name] = machine.new_target(name, bluegreen.ALLOW_EVENTS, label="Blue")
        for name in request.block_hosts or ():
            targets[name] = machine.new_target(name, bluegreen.BLOCK_EVENTS, label="Green")
        return targets
    selector = {"onPremisesInstanceTagFilters": (request.target_instances or {}).get("tagFilters")}
    green = set(resources.instances_for_group(conn, selector))
    green_events = (*IN_PLACE, *bluegreen.ALLOW_EVENTS)
    for name in sorted(green):
        targets[name] = machine.new_target(name, green_events, label="Green")
    for name in ordered:
        if name not in green:
            targets[name] = machine.new_target(name, bluegreen.BLOCK_EVENTS, label="Blue")
    return targets


def _blue_green_options(state: DeploymentState, options: dict[str, Any]) -> None:
    state.phase = "install"
    ready = options.get("deploymentReadyOption") or {}
    if ready.get("actionOnTimeout") == "STOP_DEPLOYMENT":
        state.ready_wait = float(ready.get("waitTimeInMinutes", 0)) * 60
    terminate = options.get("terminateBlueInstancesOnDeploymentSuccess") or {}
    if terminate.get("action", "KEEP_ALIVE") == "TERMINATE":
        state.terminate_wait = float(terminate.get("terminationWaitTimeInMinutes", 0)) * 60


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
