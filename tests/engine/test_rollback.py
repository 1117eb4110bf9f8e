"""Rollbacks as pure builders: what an automatic rollback redeploys, to which hosts,
why none is possible, how the two deployments are linked, and the manual rollback's
revision and request."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.engine import rollback
from shipyard.engine.hosts import new_target
from shipyard.engine.launch import LaunchRequest
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.engine.rollback import RollbackError, RollbackSnapshot
from shipyard.engine.state import DeploymentState, Label, Phase, StoredDeployment, Strategy
from shipyard.engine.strategies.blue_green import ALLOW_EVENTS, BLOCK_EVENTS
from shipyard.errors import ShipyardError
from shipyard.model import DeploymentCreator, DeploymentStatus, LifecycleEventStatus

E = LifecycleEventStatus
GOOD = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-1.zip"}}
OLDER = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-0.zip"}}
BAD = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-2.zip"}}
CONFIG = {
    "deploymentConfigName": "CodeDeployDefault.OneAtATime",
    "minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1},
}
GROUP = {
    "applicationName": "shop",
    "deploymentGroupName": "web",
    "deploymentGroupId": "dg-1",
    "targetRevision": GOOD,
}


def deployment(
    deployment_id: str,
    hosts: dict[str, tuple[LifecycleEventStatus, ...]],
    *,
    events: tuple[str, ...] = IN_PLACE,
    labels: dict[str, Label] | None = None,
    info: dict[str, Any] | None = None,
    **state: Any,
) -> StoredDeployment:
    """A deployment whose hosts' first events have the given statuses (the rest pending)."""
    targets = {}
    for name, statuses in hosts.items():
        target = new_target(name, events, (labels or {}).get(name))
        for event, status in zip(target.events, statuses, strict=False):
            event.status = status
        targets[name] = target
    header = DeploymentState(
        deployment_id=deployment_id,
        status=DeploymentStatus.FAILED,
        health_rule={"type": "MOST_CONCURRENCY", "value": 1},
        event_timeout=60.0,
        targets=targets,
        **state,
    )
    doc = {"revision": BAD, "fileExistsBehavior": "DISALLOW", **(info or {})}
    return StoredDeployment(header, doc, "shop", "web")


def last_success(**info: Any) -> StoredDeployment:
    return deployment("d-GOOD00001", {}, info=info)


def snapshot(
    group: dict[str, Any] | None = GROUP,
    config: dict[str, Any] | None = CONFIG,
    previous: StoredDeployment | None = None,
) -> RollbackSnapshot:
    return RollbackSnapshot(group, config, previous)


def rollback_request(**fields: Any) -> LaunchRequest:
    """The request of a rollback in the shop application's web group."""
    creator = DeploymentCreator.ROLLBACK.value
    return LaunchRequest(app_name="shop", group=GROUP, config=CONFIG, creator=creator, **fields)


def failed_in_place(ignore_stop: bool = False) -> StoredDeployment:
    return deployment(
        "d-FAILED001",
        {
            "h1": (E.SUCCEEDED,) * len(IN_PLACE),
            "h2": (E.FAILED, E.SUCCEEDED, E.FAILED, E.SKIPPED),
            "h3": (E.SKIPPED,) * len(IN_PLACE),  # never reached
            "h4": (),  # still pending
        },
        ignore_application_stop_failures=ignore_stop,
    )


def failed_blue_green(allow: LifecycleEventStatus) -> StoredDeployment:
    """Green g1 installed; its AllowTraffic has ``allow``; blue b1 and b2 untouched."""
    green = (E.SUCCEEDED,) * len(IN_PLACE) + (E.SUCCEEDED, allow)
    failed = deployment(
        "d-BLUEGRN01",
        {"g1": green},
        events=(*IN_PLACE, *ALLOW_EVENTS),
        labels={"g1": Label.GREEN},
        strategy=Strategy.BLUE_GREEN,
        phase=Phase.ALLOW,
    )
    for name in ("b1", "b2"):
        failed.state.targets[name] = new_target(name, BLOCK_EVENTS, Label.BLUE)
    return failed


# ---- automatic, in place -------------------------------------------------------------


@pytest.mark.parametrize("ignore_stop", [False, True])
def test_automatic_in_place_redeploys_the_last_good_revision_to_touched_hosts(
    ignore_stop: bool,
) -> None:
    failed = failed_in_place(ignore_stop)
    previous = last_success(fileExistsBehavior="OVERWRITE")
    got = rollback.automatic(failed, snapshot(previous=previous))
    assert got == rollback_request(
        revision=GOOD,
        description="Rollback of d-FAILED001",
        file_exists_behavior="OVERWRITE",
        ignore_application_stop_failures=ignore_stop,
        only_targets=("h1", "h2"),
    )


def test_touched_targets_are_the_hosts_that_ran_an_event() -> None:
    assert rollback.touched_targets(failed_in_place()) == ("h1", "h2")
    running = deployment("d-X", {"h1": (E.IN_PROGRESS,), "h2": (E.PENDING,)})
    assert rollback.touched_targets(running) == ("h1",)


def test_automatic_without_a_last_success_keeps_disallow() -> None:
    got = rollback.automatic(failed_in_place(), snapshot())
    assert isinstance(got, LaunchRequest)
    assert got.file_exists_behavior == "DISALLOW"


@pytest.mark.parametrize(
    "group",
    [
        None,
        {**GROUP, "targetRevision": None},
        {k: v for k, v in GROUP.items() if k != "targetRevision"},
    ],
)
def test_nothing_to_roll_back_is_a_message(group: dict[str, Any] | None) -> None:
    got = rollback.automatic(failed_in_place(), snapshot(group=group))
    assert got == rollback.NOTHING_TO_ROLL_BACK.format(group="web")
    assert isinstance(got, str) and "deployment group web" in got


def test_a_config_gone_is_a_message() -> None:
    assert rollback.automatic(failed_in_place(), snapshot(config=None)) == (
        "The deployment config is gone"
    )


# ---- automatic, blue/green ----------------------------------------------------------


@pytest.mark.parametrize("allow", [E.PENDING, E.SKIPPED])
def test_blue_green_traffic_never_moved_needs_no_rollback(allow: LifecycleEventStatus) -> None:
    got = rollback.automatic(failed_blue_green(allow), snapshot())
    assert got == "No rollback needed: traffic never left the original instances."


@pytest.mark.parametrize("allow", [E.IN_PROGRESS, E.FAILED, E.SUCCEEDED])
def test_blue_green_traffic_moved_goes_back_to_the_blue_hosts(
    allow: LifecycleEventStatus,
) -> None:
    got = rollback.automatic(failed_blue_green(allow), snapshot())
    assert got == rollback_request(
        revision=GOOD,
        description="Rollback of d-BLUEGRN01",
        allow_hosts=("b1", "b2"),
        block_hosts=("g1",),
    )


def test_blue_green_first_deployment_rolls_back_with_its_own_revision() -> None:
    """No earlier success: the blue hosts still run what they ran; the request names
    the failed revision only because a deployment needs one (nothing is installed)."""
    group = {**GROUP, "targetRevision": None}
    got = rollback.automatic(failed_blue_green(E.SUCCEEDED), snapshot(group=group))
    assert isinstance(got, LaunchRequest)
    assert got.revision == BAD


@pytest.mark.parametrize(
    ("group", "config"), [(None, CONFIG), (GROUP, None)], ids=["group gone", "config gone"]
)
def test_blue_green_group_or_config_gone_is_a_message(
    group: dict[str, Any] | None, config: dict[str, Any] | None
) -> None:
    got = rollback.automatic(failed_blue_green(E.SUCCEEDED), snapshot(group, config))
    assert got == "The deployment group is gone"


# ---- links ------------------------------------------------------------------------


def test_link_both_ways() -> None:
    failed = failed_in_place()
    new = deployment("d-ROLLBK001", {})
    message = rollback.link_message(failed, "d-ROLLBK001")
    rollback.link(failed, new, message)
    assert failed.info["rollbackInfo"] == {
        "rollbackDeploymentId": "d-ROLLBK001",
        "rollbackMessage": "Rolled back to the last successful revision in d-ROLLBK001",
    }
    assert new.info["rollbackInfo"] == {
        "rollbackTriggeringDeploymentId": "d-FAILED001",
        "rollbackMessage": "Rolled back to the last successful revision in d-ROLLBK001",
    }


def test_blue_green_link_message_says_traffic_moved_back() -> None:
    message = rollback.link_message(failed_blue_green(E.SUCCEEDED), "d-ROLLBK001")
    assert message == "Traffic moved back to the original instances in d-ROLLBK001"


# ---- manual ----------------------------------------------------------------------


def test_manual_after_a_failure_goes_to_the_last_good_revision() -> None:
    group = {**GROUP, "lastAttemptedDeployment": {"status": "Failed"}}
    revision = rollback.manual_revision(group, snapshot(previous=last_success()))
    assert revision == GOOD
    assert revision is not GOOD  # a copy: the request may not change the group


def test_manual_after_a_success_goes_to_the_revision_before_it() -> None:
    group = {**GROUP, "lastAttemptedDeployment": {"status": "Succeeded"}}
    previous = last_success(previousRevision=OLDER)
    assert rollback.manual_revision(group, snapshot(previous=previous)) == OLDER


@pytest.mark.parametrize(
    ("group", "previous"),
    [
        ({**GROUP, "lastAttemptedDeployment": {"status": "Succeeded"}}, None),
        ({**GROUP, "lastAttemptedDeployment": {"status": "Succeeded"}}, last_success()),
        ({**GROUP, "targetRevision": None}, None),
    ],
    ids=["no last success", "first success", "never succeeded"],
)
def test_manual_with_nothing_earlier_is_an_error(
    group: dict[str, Any], previous: StoredDeployment | None
) -> None:
    with pytest.raises(RollbackError, match="deployment group web has no earlier successful"):
        rollback.manual_revision(group, snapshot(previous=previous))
    assert issubclass(RollbackError, ShipyardError)


@pytest.mark.parametrize("emergency", [False, True])
def test_manual_request(emergency: bool) -> None:
    previous = last_success(fileExistsBehavior="RETAIN")
    got = rollback.manual_request(
        "shop", GROUP, OLDER, snapshot(previous=previous), emergency=emergency
    )
    assert got == rollback_request(
        revision=OLDER,
        description="Emergency rollback" if emergency else "Manual rollback",
        file_exists_behavior="RETAIN",
        ignore_application_stop_failures=emergency,
        only_targets=None,
        skip_stop_events=emergency,
    )


@pytest.mark.parametrize(
    ("group", "name"),
    [(GROUP, "CodeDeployDefault.OneAtATime"), ({**GROUP, "deploymentConfigName": "Mine"}, "Mine")],
)
def test_manual_request_without_its_config_is_an_error(group: dict[str, Any], name: str) -> None:
    with pytest.raises(RollbackError, match=f"deployment config {name} does not exist"):
        rollback.manual_request("shop", group, GOOD, snapshot(config=None), emergency=False)
    assert rollback.manual_config_name(group) == name


def test_an_emergency_rollback_redeploys_every_host_at_once() -> None:
    """`shipyard rollback --emergency` says every host now: the group's own config
    (OneAtATime here) would redeploy one host after another."""
    group = {**GROUP, "deploymentConfigName": "CodeDeployDefault.OneAtATime"}
    assert rollback.manual_config_name(group, emergency=True) == "CodeDeployDefault.AllAtOnce"
    assert rollback.manual_config_name(group) == "CodeDeployDefault.OneAtATime"
