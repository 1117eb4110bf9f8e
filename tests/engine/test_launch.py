"""Building a new deployment from a request and a snapshot: targets and their events,
host order, waits, bake time, approval, and the static deploymentInfo document."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine import launch
from shipyard.engine.launch import LaunchRequest, LaunchSnapshot
from shipyard.engine.lifecycle import IN_PLACE, IN_PLACE_WITH_TRAFFIC_CONTROL, STOP_EVENTS
from shipyard.engine.plan import HEALTH_ORDER
from shipyard.engine.state import Label, Phase, StoredDeployment, Strategy
from shipyard.engine.strategies.blue_green import ALLOW_EVENTS, BLOCK_EVENTS
from shipyard.model import DeploymentCreator, DeploymentStatus

NOW = 1000.0
TIMEOUT = 300.0
REVISION = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-2.zip"}}
PREVIOUS = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-1.zip"}}
ONE_AT_A_TIME = {
    "deploymentConfigName": "CodeDeployDefault.OneAtATime",
    "minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1},
}
ALARMS = {"enabled": True, "alarms": [{"name": "errors"}, {"name": "latency"}]}
HEALTH = {"h-current": "current", "h-old": "old", "h-unknown": "unknown", "h-bad": "unhealthy"}
IN_HEALTH_ORDER = ["h-bad", "h-unknown", "h-old", "h-current"]


def group(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "applicationName": "shop",
        "deploymentGroupName": "web",
        "deploymentGroupId": "dg-1",
    }
    doc.update(changes)
    return doc


def blue_green_group(**options: Any) -> dict[str, Any]:
    style = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    return group(deploymentStyle=style, blueGreenDeploymentConfiguration=options)


def request(**changes: Any) -> LaunchRequest:
    base = LaunchRequest(app_name="shop", group=group(), config=ONE_AT_A_TIME, revision=REVISION)
    return replace(base, **changes)


def snapshot(
    health: dict[str, str] = HEALTH, green: tuple[str, ...] = (), bake: float = 0.0
) -> LaunchSnapshot:
    return LaunchSnapshot(tuple(sorted(health)), dict(health), green, bake)


def build(
    req: LaunchRequest,
    snap: LaunchSnapshot | None = None,
    *,
    poll: float = 1.0,
    minute: float = 60.0,
) -> StoredDeployment:
    return launch.build(req, snap or snapshot(), "d-NEW000001", NOW, TIMEOUT, poll, minute)


def event_names(stored: StoredDeployment, host: str) -> tuple[str, ...]:
    return tuple(event.name for event in stored.state.targets[host].events)


# ---- in place ----------------------------------------------------------------------


def test_in_place_orders_hosts_by_health_unhealthy_first_current_last() -> None:
    stored = build(request())
    assert list(stored.state.targets) == IN_HEALTH_ORDER
    assert stored.info["targetOrder"] == IN_HEALTH_ORDER
    state = stored.state
    assert (state.deployment_id, state.status, state.create_time) == (
        "d-NEW000001",
        DeploymentStatus.CREATED,
        NOW,
    )
    assert state.strategy == Strategy.IN_PLACE and state.phase is None
    assert state.health_rule == {"type": "MOST_CONCURRENCY", "value": 1}
    assert state.event_timeout == TIMEOUT
    assert all(event_names(stored, h) == IN_PLACE for h in IN_HEALTH_ORDER)


@given(
    st.dictionaries(
        st.integers(0, 99).map(lambda i: f"h{i}"), st.sampled_from(HEALTH_ORDER), max_size=12
    )
)
def test_any_fleet_is_ordered_by_health_then_name(health: dict[str, str]) -> None:
    order = list(build(request(), snapshot(health)).state.targets)
    assert sorted(order) == sorted(health)
    assert order == sorted(order, key=lambda name: (HEALTH_ORDER.index(health[name]), name))


def test_with_traffic_control_the_hosts_get_the_traffic_events() -> None:
    style = {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    stored = build(request(group=group(deploymentStyle=style)))
    assert event_names(stored, "h-old") == IN_PLACE_WITH_TRAFFIC_CONTROL
    assert stored.info["deploymentStyle"] == style


def test_only_the_snapshot_hosts_are_targeted() -> None:
    """A rollback's only_targets are applied when the snapshot is read."""
    req = request(only_targets=("h-old", "h-bad"))
    stored = build(req, snapshot({"h-old": "old", "h-bad": "unhealthy"}))
    assert list(stored.state.targets) == ["h-bad", "h-old"]


def test_update_outdated_only_leaves_current_hosts_out() -> None:
    stored = build(request(update_outdated_only=True))
    assert list(stored.state.targets) == ["h-bad", "h-unknown", "h-old"]
    assert stored.info["updateOutdatedInstancesOnly"] is True


def test_update_outdated_only_on_an_up_to_date_fleet_has_no_targets() -> None:
    stored = build(request(update_outdated_only=True), snapshot({"h1": "current"}))
    assert stored.state.targets == {}


def test_emergency_skips_the_stop_events() -> None:
    style = {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
    stored = build(request(group=group(deploymentStyle=style), skip_stop_events=True))
    names = event_names(stored, "h-old")
    assert not STOP_EVENTS & set(names)
    assert names == tuple(e for e in IN_PLACE_WITH_TRAFFIC_CONTROL if e not in STOP_EVENTS)
    assert names[0] == "BlockTraffic"


# ---- blue/green --------------------------------------------------------------------


def test_blue_green_green_installs_and_allows_blue_blocks() -> None:
    health = {"b1": "current", "b2": "old"}
    stored = build(request(group=blue_green_group()), snapshot(health, green=("g2", "g1")))
    state = stored.state
    assert list(state.targets) == ["g1", "g2", "b2", "b1"]  # green by name, blue by health
    assert stored.info["targetOrder"] == ["g1", "g2", "b2", "b1"]
    for name in ("g1", "g2"):
        assert state.targets[name].label == Label.GREEN
        assert event_names(stored, name) == (*IN_PLACE, *ALLOW_EVENTS)
    for name in ("b1", "b2"):
        assert state.targets[name].label == Label.BLUE
        assert event_names(stored, name) == BLOCK_EVENTS
    assert (state.strategy, state.phase) == (Strategy.BLUE_GREEN, Phase.INSTALL)
    assert stored.info["instanceTerminationWaitTimeStarted"] is False


def test_a_blue_green_host_already_in_the_green_fleet_is_only_green() -> None:
    stored = build(request(group=blue_green_group()), snapshot({"h1": "old"}, green=("h1",)))
    assert list(stored.state.targets) == ["h1"]
    assert stored.state.targets["h1"].label == Label.GREEN


def test_blue_green_rollback_allows_on_blue_blocks_on_green_and_installs_nothing() -> None:
    req = request(
        group=blue_green_group(),
        creator=DeploymentCreator.ROLLBACK.value,
        allow_hosts=("b1", "b2"),
        block_hosts=("g1",),
    )
    stored = build(req, snapshot({}))
    state = stored.state
    assert {name: state.targets[name].label for name in state.targets} == {
        "b1": Label.BLUE,
        "b2": Label.BLUE,
        "g1": Label.GREEN,
    }
    assert event_names(stored, "b1") == ALLOW_EVENTS
    assert event_names(stored, "g1") == BLOCK_EVENTS
    assert (state.strategy, state.phase) == (Strategy.BLUE_GREEN, Phase.ALLOW)
    assert state.is_rollback


@pytest.mark.parametrize("minute", [60.0, 0.5])
def test_blue_green_waits_are_minutes_scaled_by_minute_seconds(minute: float) -> None:
    options = {
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 5},
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 30,
        },
    }
    stored = build(request(group=blue_green_group(**options)), minute=minute)
    assert stored.state.ready_wait == 5 * minute
    assert stored.state.terminate_wait == 30 * minute
    assert stored.info["blueGreenDeploymentConfiguration"] == options


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}},
        {"terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"}},
    ],
)
def test_blue_green_without_waits(options: dict[str, Any]) -> None:
    """Reroute at once (no ready wait) and keep the original hosts (no termination)."""
    stored = build(request(group=blue_green_group(**options)))
    assert (stored.state.ready_wait, stored.state.terminate_wait) == (None, None)


# ---- alarms, rollback configuration, approval ----------------------------------------


@pytest.mark.parametrize(
    ("alarm_bake", "poll", "bake"),
    [(0.0, 1.0, 2.0), (30.0, 1.0, 30.0), (5.0, 10.0, 20.0)],
)
def test_bake_is_the_longest_alarm_bake_or_two_polls(
    alarm_bake: float, poll: float, bake: float
) -> None:
    stored = build(
        request(group=group(alarmConfiguration=ALARMS)), snapshot(bake=alarm_bake), poll=poll
    )
    assert stored.state.bake_seconds == bake
    assert stored.info["alarmConfiguration"] == ALARMS
    assert launch.alarm_names(request(group=group(alarmConfiguration=ALARMS))) == [
        "errors",
        "latency",
    ]


@pytest.mark.parametrize(
    "req",
    [
        request(),
        request(group=group(alarmConfiguration={**ALARMS, "enabled": False})),
        request(group=group(alarmConfiguration=ALARMS), creator=DeploymentCreator.ROLLBACK.value),
    ],
    ids=["no alarms", "alarms disabled", "rollback"],
)
def test_no_bake_without_watched_alarms(req: LaunchRequest) -> None:
    stored = build(req, snapshot(bake=60.0))
    assert stored.state.bake_seconds == 0.0
    assert launch.alarm_names(req) == []


def test_a_rollback_watches_no_alarms_not_even_an_override() -> None:
    req = request(creator=DeploymentCreator.ROLLBACK.value, alarm_configuration=ALARMS)
    stored = build(req)
    assert launch.watched_alarms(req) == {}
    assert "alarmConfiguration" not in stored.info
    assert stored.info["overrideAlarmConfiguration"] == ALARMS
    assert stored.state.is_rollback


def test_an_override_replaces_the_group_alarms() -> None:
    override = {"enabled": True, "alarms": [{"name": "canary"}]}
    req = request(group=group(alarmConfiguration=ALARMS), alarm_configuration=override)
    stored = build(req)
    assert launch.alarm_names(req) == ["canary"]
    assert stored.info["alarmConfiguration"] == override
    assert stored.info["overrideAlarmConfiguration"] == override


@pytest.mark.parametrize(
    ("from_group", "from_request", "events"),
    [
        (None, None, []),
        ({"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}, None, ["DEPLOYMENT_FAILURE"]),
        ({"enabled": False, "events": ["DEPLOYMENT_FAILURE"]}, None, []),
        (
            {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
            {"enabled": True, "events": ["DEPLOYMENT_STOP_ON_ALARM"]},
            ["DEPLOYMENT_STOP_ON_ALARM"],
        ),
    ],
)
def test_auto_rollback_events_come_from_the_request_or_the_group(
    from_group: dict[str, Any] | None, from_request: dict[str, Any] | None, events: list[str]
) -> None:
    g = group(autoRollbackConfiguration=from_group) if from_group else group()
    stored = build(request(group=g, auto_rollback=from_request))
    assert stored.state.auto_rollback_events == events
    assert stored.info.get("autoRollbackConfiguration") == (from_request or from_group)


@pytest.mark.parametrize(
    ("options", "awaiting"),
    [
        (None, False),
        ({}, False),
        ({"requireApproval": False}, False),
        ({"requireApproval": True}, True),
    ],
)
def test_approval_from_shipyard_options(options: dict[str, Any] | None, awaiting: bool) -> None:
    g = group(shipyardOptions=options) if options is not None else group()
    assert build(request(group=g)).state.awaiting_approval is awaiting


# ---- the info document -------------------------------------------------------------


def test_the_info_document() -> None:
    lb = {"targetGroupInfoList": [{"name": "web-tg"}]}
    req = request(
        group=group(targetRevision=PREVIOUS, loadBalancerInfo=lb),
        creator=DeploymentCreator.USER.value,
        description="release 2",
        file_exists_behavior="OVERWRITE",
        ignore_application_stop_failures=True,
        deployment_mode="RESTART",
        target_instances={"tagFilters": [{"Key": "fleet", "Value": "green"}]},
    )
    stored = build(req)
    assert (stored.application_name, stored.group_name) == ("shop", "web")
    assert stored.info == {
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "deploymentGroupId": "dg-1",
        "revision": REVISION,
        "creator": "user",
        "description": "release 2",
        "ignoreApplicationStopFailures": True,
        "updateOutdatedInstancesOnly": False,
        "fileExistsBehavior": "OVERWRITE",
        "deploymentStyle": {
            "deploymentType": "IN_PLACE",
            "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
        },
        "computePlatform": "Server",
        "deploymentStatusMessages": [],
        "targetOrder": IN_HEALTH_ORDER,
        "deploymentMode": "RESTART",
        "previousRevision": PREVIOUS,
        "loadBalancerInfo": lb,
        "targetInstances": {"tagFilters": [{"Key": "fleet", "Value": "green"}]},
    }
    assert stored.state.ignore_application_stop_failures is True


def test_a_plain_deployment_leaves_the_optional_members_out() -> None:
    info = build(request()).info
    optional = {
        "deploymentMode",
        "previousRevision",
        "autoRollbackConfiguration",
        "alarmConfiguration",
        "overrideAlarmConfiguration",
        "loadBalancerInfo",
        "targetInstances",
        "blueGreenDeploymentConfiguration",
    }
    assert not optional & set(info)
    assert info["creator"] == "user"
    assert info["fileExistsBehavior"] == "DISALLOW"


def test_a_platforms_own_target_gets_its_events_not_blue_green_hosts() -> None:
    own = launch.PlatformTargets(("fn:live",), ("Before", "Shift", "After"), {"spec": {"a": 1}})
    lambda_group = blue_green_group(terminateBlueInstancesOnDeploymentSuccess={})
    lambda_group["computePlatform"] = "Lambda"
    config = {"deploymentConfigName": "CodeDeployDefault.LambdaAllAtOnce"}
    req = replace(request(group=lambda_group, config=config), platform_targets=own)

    stored = launch.build(req, LaunchSnapshot(("fn:live",), {"fn:live": "unknown"}), "d-1", NOW, 9)

    target = stored.state.targets["fn:live"]
    assert [e.name for e in target.events] == ["Before", "Shift", "After"]
    assert target.label is None and stored.state.phase is None
    assert stored.state.strategy == Strategy.IN_PLACE  # the platform's prepare sets its own
    assert stored.state.health_rule == launch.NO_HOSTS_RULE
    assert stored.info["computePlatform"] == "Lambda"
    assert stored.info["spec"] == {"a": 1}
    assert "blueGreenDeploymentConfiguration" not in stored.info
