"""outdatedInstancesStrategy UPDATE as a pure builder: which groups top up hosts that
joined them, which hosts a follow-on deployment targets, and the link to its root."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.engine import outdated
from shipyard.engine.launch import LaunchRequest
from shipyard.engine.outdated import OutdatedSnapshot
from shipyard.engine.state import DeploymentState, StoredDeployment
from shipyard.model import DeploymentCreator, DeploymentStatus

REVISION = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "app-1.zip"}}
CONFIG = {
    "deploymentConfigName": "CodeDeployDefault.OneAtATime",
    "minimumHealthyHosts": {"type": "MOST_CONCURRENCY", "value": 1},
}
GROUP: dict[str, Any] = {
    "applicationName": "shop",
    "deploymentGroupName": "web",
    "deploymentGroupId": "dg-1",
    "targetRevision": REVISION,
    "lastSuccessfulDeployment": {"deploymentId": "d-ROOT00001", "status": "Succeeded"},
}


def stored(deployment_id: str, **info: Any) -> StoredDeployment:
    state = DeploymentState(
        deployment_id=deployment_id,
        status=DeploymentStatus.SUCCEEDED,
        health_rule={"type": "MOST_CONCURRENCY", "value": 1},
        event_timeout=60.0,
    )
    return StoredDeployment(state, {"revision": REVISION, **info}, "shop", "web")


def snapshot(**changes: Any) -> OutdatedSnapshot:
    fields: dict[str, Any] = {
        "active": None,
        "heard_from": ("h1", "h2", "h3"),
        "done": frozenset({"h1"}),
        "root": stored("d-ROOT00001", fileExistsBehavior="OVERWRITE"),
        "config": CONFIG,
    }
    fields.update(changes)
    return OutdatedSnapshot(**fields)


@pytest.mark.parametrize(
    ("changes", "wanted"),
    [
        ({}, True),
        ({"outdatedInstancesStrategy": "UPDATE"}, True),
        ({"outdatedInstancesStrategy": "IGNORE"}, False),
        ({"deploymentStyle": {"deploymentType": "BLUE_GREEN"}}, False),
        ({"deploymentStyle": {"deploymentType": "IN_PLACE"}}, True),
        ({"lastSuccessfulDeployment": None}, False),
        ({"lastSuccessfulDeployment": {"status": "Succeeded"}}, False),
        ({"targetRevision": None}, False),
    ],
    ids=[
        "default",
        "UPDATE",
        "IGNORE",
        "blue/green",
        "in place",
        "no last success",
        "last success without id",
        "no target revision",
    ],
)
def test_wants_update(changes: dict[str, Any], wanted: bool) -> None:
    assert outdated.wants_update({**GROUP, **changes}) is wanted


def test_the_follow_on_deployment_targets_hosts_heard_from_minus_done() -> None:
    got = outdated.request(GROUP, snapshot())
    assert got == LaunchRequest(
        app_name="shop",
        group=GROUP,
        config=CONFIG,
        revision=REVISION,
        creator=DeploymentCreator.AUTO_UPDATE.value,
        description="Outdated instances brought up to d-ROOT00001's revision",
        file_exists_behavior="OVERWRITE",
        only_targets=("h2", "h3"),
    )
    assert got.creator == "CodeDeployAutoUpdate"
    assert got.revision is not GROUP["targetRevision"]  # a copy of the group's


def test_file_exists_behavior_defaults_to_disallow() -> None:
    got = outdated.request(GROUP, snapshot(root=stored("d-ROOT00001")))
    assert got is not None and got.file_exists_behavior == "DISALLOW"


@pytest.mark.parametrize(
    "changes",
    [
        {"active": "d-RUNNING01"},
        {"heard_from": ()},
        {"done": frozenset({"h1", "h2", "h3"})},
        {"root": None},
        {"config": None},
    ],
    ids=["active deployment", "nobody heard from", "every host done", "root gone", "config gone"],
)
def test_no_follow_on_deployment(changes: dict[str, Any]) -> None:
    assert outdated.request(GROUP, snapshot(**changes)) is None


def test_no_follow_on_deployment_when_the_group_ignores_outdated_hosts() -> None:
    group = {**GROUP, "outdatedInstancesStrategy": "IGNORE"}
    assert outdated.request(group, snapshot()) is None


def test_link_both_ways_and_keeps_every_update_of_the_root() -> None:
    root = stored("d-ROOT00001")
    first, second = stored("d-UPDATE001"), stored("d-UPDATE002")
    outdated.link(root, first)
    outdated.link(root, second)
    assert root.info["relatedDeployments"] == {
        "autoUpdateOutdatedInstancesDeploymentIds": ["d-UPDATE001", "d-UPDATE002"]
    }
    for update in (first, second):
        assert update.info["relatedDeployments"] == {
            "autoUpdateOutdatedInstancesRootDeploymentId": "d-ROOT00001"
        }
