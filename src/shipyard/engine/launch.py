"""Building a new deployment: its targets, schedule, health rule and static info.

Shared by CreateDeployment and by the runner when it starts a rollback. Pure: what it
needs from the store (the group's hosts, their health, alarm bake times) comes in a
``LaunchSnapshot`` the runner reads first (``runner.snapshots``). It decides nothing
about the deployment's course: that is the machine's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.engine import plan
from shipyard.engine.hosts import new_target
from shipyard.engine.lifecycle import IN_PLACE, STOP_EVENTS, events_for
from shipyard.engine.state import (
    DeploymentState,
    Label,
    Phase,
    StoredDeployment,
    Strategy,
    TargetState,
)
from shipyard.engine.strategies import blue_green as bluegreen
from shipyard.model import DeploymentCreator, DeploymentStatus

NO_HOSTS_RULE = {"type": "HOST_COUNT", "value": 0}


@dataclass(frozen=True)
class PlatformTargets:
    """Targets a platform names itself (a function alias, a service) instead of the
    group's hosts, with its own events and static info for the deployment."""

    target_ids: tuple[str, ...]
    events: tuple[str, ...]
    info: dict[str, Any]  # merged into the deployment's info


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
    # Lambda and ECS: the platform's own targets (None: the group's hosts).
    platform_targets: PlatformTargets | None = None


@dataclass(frozen=True)
class LaunchSnapshot:
    """What a launch reads from the store, read by the runner in its transaction."""

    instances: tuple[str, ...]  # the group's hosts (only_targets already applied)
    health: dict[str, str]  # host -> unhealthy / unknown / old / current
    green: tuple[str, ...] = ()  # blue/green: the replacement hosts' names
    alarm_bake_seconds: float = 0.0  # the longest bake time of the watched alarms


def alarm_names(request: LaunchRequest) -> list[str]:
    """The alarms a new deployment watches (none for a rollback: it must not be
    stopped by the alarm that caused it)."""
    config = watched_alarms(request)
    return [a["name"] for a in config.get("alarms") or []] if config.get("enabled") else []


def watched_alarms(request: LaunchRequest) -> dict[str, Any]:
    if request.creator == DeploymentCreator.ROLLBACK.value:
        return {}
    return request.alarm_configuration or request.group.get("alarmConfiguration") or {}


def _rollback_events(auto_rollback: dict[str, Any] | None) -> list[str]:
    if not auto_rollback or not auto_rollback.get("enabled"):
        return []
    return list(auto_rollback.get("events") or [])


def build(
    request: LaunchRequest,
    snapshot: LaunchSnapshot,
    deployment_id: str,
    now: float,
    event_timeout: float,
    alarm_poll_seconds: float = 1.0,
    minute_seconds: float = 60.0,
) -> StoredDeployment:
    group = request.group
    group_name = group["deploymentGroupName"]
    instances = list(snapshot.instances)
    health = snapshot.health
    if request.update_outdated_only:
        instances = [name for name in instances if health[name] != "current"]
    ordered = plan.order_hosts([(name, health[name]) for name in instances])
    style = group.get("deploymentStyle") or {}
    deployment_type = style.get("deploymentType", "IN_PLACE")
    deployment_option = style.get("deploymentOption", "WITHOUT_TRAFFIC_CONTROL")
    events = events_for(deployment_type, deployment_option)
    if request.skip_stop_events:
        events = tuple(e for e in events if e not in STOP_EVENTS)
    alarm_config = watched_alarms(request)
    bake = 0.0
    if alarm_names(request):
        # At least one full round of alarm readings after the hosts finish, so a short
        # deployment cannot succeed before its alarms were ever read.
        bake = max(snapshot.alarm_bake_seconds, 2 * alarm_poll_seconds)
    auto_rollback = request.auto_rollback or group.get("autoRollbackConfiguration")
    own = request.platform_targets
    if own is not None:
        events = own.events
    targets = {name: new_target(name, events) for name in ordered}
    if deployment_type == "BLUE_GREEN" and own is None:
        targets = _blue_green_targets(request, snapshot.green, ordered)
    state = DeploymentState(
        deployment_id=deployment_id,
        status=DeploymentStatus.CREATED,
        # Lambda and ECS configs have none: a traffic shift has no hosts to keep healthy.
        health_rule=dict(request.config.get("minimumHealthyHosts") or NO_HOSTS_RULE),
        event_timeout=event_timeout,
        ignore_application_stop_failures=request.ignore_application_stop_failures,
        create_time=now,
        auto_rollback_events=_rollback_events(auto_rollback),
        is_rollback=request.creator == DeploymentCreator.ROLLBACK.value,
        bake_seconds=bake,
        awaiting_approval=bool((group.get("shipyardOptions") or {}).get("requireApproval")),
        targets=targets,
    )
    if deployment_type == "BLUE_GREEN" and own is None:
        options = group.get("blueGreenDeploymentConfiguration") or {}
        _blue_green_options(state, options, minute_seconds)
        if request.allow_hosts is not None:
            state.phase = Phase.ALLOW  # a rollback installs nothing
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
        "computePlatform": group.get("computePlatform") or "Server",
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
    if own is not None:
        info.update(own.info)
    elif deployment_type == "BLUE_GREEN":
        info["blueGreenDeploymentConfiguration"] = group.get("blueGreenDeploymentConfiguration")
        info["instanceTerminationWaitTimeStarted"] = False
        info["targetOrder"] = list(state.targets)
    return StoredDeployment(state, info, request.app_name, group_name)


def _blue_green_targets(
    request: LaunchRequest, green_hosts: tuple[str, ...], ordered: list[str]
) -> dict[str, TargetState]:
    """Green (replacement) hosts install then take traffic; blue (original) hosts give
    it up. A rollback swaps the roles and installs nothing."""
    targets: dict[str, TargetState] = {}
    if request.allow_hosts is not None:
        for name in request.allow_hosts:
            targets[name] = new_target(name, bluegreen.ALLOW_EVENTS, label=Label.BLUE)
        for name in request.block_hosts or ():
            targets[name] = new_target(name, bluegreen.BLOCK_EVENTS, label=Label.GREEN)
        return targets
    green = set(green_hosts)
    green_events = (*IN_PLACE, *bluegreen.ALLOW_EVENTS)
    for name in sorted(green):
        targets[name] = new_target(name, green_events, label=Label.GREEN)
    for name in ordered:
        if name not in green:
            targets[name] = new_target(name, bluegreen.BLOCK_EVENTS, label=Label.BLUE)
    return targets


def _blue_green_options(
    state: DeploymentState, options: dict[str, Any], minute_seconds: float
) -> None:
    state.strategy = Strategy.BLUE_GREEN
    state.phase = Phase.INSTALL
    ready = options.get("deploymentReadyOption") or {}
    if ready.get("actionOnTimeout") == "STOP_DEPLOYMENT":
        state.ready_wait = float(ready.get("waitTimeInMinutes", 0)) * minute_seconds
    terminate = options.get("terminateBlueInstancesOnDeploymentSuccess") or {}
    if terminate.get("action", "KEEP_ALIVE") == "TERMINATE":
        minutes = float(terminate.get("terminationWaitTimeInMinutes", 0))
        state.terminate_wait = minutes * minute_seconds
