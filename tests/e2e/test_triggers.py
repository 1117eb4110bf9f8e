"""Trigger notifications end to end: a real deployment to two hosts with real agents
notifies a real webhook of every event, with CodeDeploy's payload fields and an HMAC
signature; a webhook that takes 5 s per request does not slow the deployment."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard import notify
from tests.e2e.conftest import Fleet, Uploader, make_bundle
from tests.e2e.test_in_place import EVENTS
from tests.support import call_extension, wait_until
from tests.test_notify import ALL_EVENTS, Received, Receiver, verify

HOSTS = ["web-1", "web-2"]
CODEDEPLOY_TIME = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d UTC \d{4}$")
EPOCH_STRING = re.compile(r"^\d+\.\d{3}$")
SLOW_SECONDS = 5.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def slow_receiver() -> Iterator[Receiver]:
    hook = Receiver(delay=SLOW_SECONDS)
    yield hook
    hook.close()


def bundle(hook: str = "echo installed") -> bytes:
    """A hook and no files: two groups may deploy it to the same hosts."""
    return make_bundle(
        {
            "appspec.yml": (
                "version: 0.0\nos: linux\n"
                "hooks:\n  AfterInstall:\n    - location: scripts/hook.sh\n      timeout: 30\n"
            ),
            "scripts/hook.sh": f"#!/bin/sh\n{hook}\n",
        }
    )


def create_group(fleet: Fleet, name: str, url: str | None) -> None:
    triggers = (
        [{"triggerName": "everything", "triggerTargetArn": url, "triggerEvents": ALL_EVENTS}]
        if url
        else []
    )
    fleet.cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName=name,
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        triggerConfigurations=triggers,
    )


def setup(fleet: Fleet) -> None:
    fleet.add_hosts(HOSTS, {"role": "web"})
    fleet.cd.create_application(applicationName="shop", computePlatform="Server")


def deploy(fleet: Fleet, group: str, revision: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    deployment_id = fleet.cd.create_deployment(
        applicationName="shop", deploymentGroupName=group, revision=revision
    )["deploymentId"]
    info = fleet.wait(deployment_id)
    assert info["status"] == "Succeeded", info
    return deployment_id, info


def listed(fleet: Fleet, deployment_id: str) -> list[dict[str, Any]]:
    answer = call_extension(
        fleet.server, "ShipyardListTriggerDeliveries", {"deploymentId": deployment_id}
    )
    result: list[dict[str, Any]] = answer["deliveries"]
    return result


def settled(fleet: Fleet, deployment_id: str, count: int) -> list[dict[str, Any]]:
    """The deployment's deliveries once ``count`` of them are Delivered."""
    last: list[list[dict[str, Any]]] = [[]]

    def delivered() -> list[dict[str, Any]] | None:
        last[0] = listed(fleet, deployment_id)
        return last[0] if sum(d["status"] == "Delivered" for d in last[0]) >= count else None

    return wait_until(delivered, lambda: f"{count} deliveries: {last[0]}", 20)


def by_delivery(requests: list[Received]) -> list[Received]:
    return sorted(requests, key=lambda r: int(r.headers["X-Shipyard-Delivery"]))


def check_deployment_event(
    payload: dict[str, Any], info: dict[str, Any], event: str, status: str
) -> None:
    assert payload["region"] == "us-east-1"
    assert payload["accountId"] == "000000000000"
    assert payload["eventTriggerName"] == "everything"
    assert payload["applicationName"] == "shop"
    assert payload["deploymentId"] == info["deploymentId"]
    assert payload["deploymentGroupName"] == "web"
    assert payload["eventType"] == event
    assert payload["status"] == status
    assert CODEDEPLOY_TIME.match(payload["createTime"])
    assert payload["createTime"] == notify.codedeploy_time(info["createTime"].timestamp())
    overview = json.loads(payload["deploymentOverview"])
    assert set(overview) == {"Failed", "InProgress", "Pending", "Skipped", "Succeeded"}
    assert all(isinstance(count, str) for count in overview.values())
    if event == "DeploymentStart":
        assert payload["completeTime"] is None
        assert int(overview["Succeeded"]) == 0
    else:
        assert CODEDEPLOY_TIME.match(payload["completeTime"])
        assert payload["completeTime"] == notify.codedeploy_time(info["completeTime"].timestamp())
        assert overview == {
            "Failed": "0",
            "InProgress": "0",
            "Pending": "0",
            "Skipped": "0",
            "Succeeded": "2",
        }
    assert "errorInformation" not in payload  # only a deployment with an error has one


def check_instance_event(
    payload: dict[str, Any], deployment_id: str, host: str, target: dict[str, Any], event: str
) -> None:
    assert payload["region"] == "us-east-1"
    assert payload["accountId"] == "000000000000"
    assert payload["eventTriggerName"] == "everything"
    assert payload["deploymentId"] == deployment_id
    assert payload["instanceId"] == f"arn:aws:codedeploy:us-east-1:000000000000:instance/{host}"
    assert payload["eventType"] == event
    assert EPOCH_STRING.match(payload["lastUpdatedAt"])
    events = payload["lifecycleEvents"]
    assert [e["LifecycleEvent"] for e in events] == EVENTS
    assert all(
        set(e) == {"LifecycleEvent", "LifecycleEventStatus", "StartTime", "EndTime"} for e in events
    )
    if event == "InstanceStart":
        assert payload["instanceStatus"] == "InProgress"
        assert all(e["LifecycleEventStatus"] == "Pending" for e in events)
        return
    assert payload["instanceStatus"] == "Succeeded"
    assert payload["lastUpdatedAt"] == f"{target['lastUpdatedAt'].timestamp():.3f}"
    for sent, actual in zip(events, target["lifecycleEvents"], strict=True):
        assert sent["LifecycleEventStatus"] == "Succeeded"
        assert sent["StartTime"] == f"{actual['startTime'].timestamp():.3f}"
        assert sent["EndTime"] == f"{actual['endTime'].timestamp():.3f}"


def test_a_deployment_notifies_a_webhook_of_every_event(
    fleet: Fleet, upload: Uploader, receiver: Receiver
) -> None:
    setup(fleet)
    create_group(fleet, "web", receiver.url)
    deployment_id, info = deploy(fleet, "web", upload("shop/v1.zip", bundle()))

    requests = by_delivery(receiver.wait_for(6))
    assert len(receiver.requests) == 6
    # OneAtATime: the deployment starts, then each host starts and succeeds in turn.
    assert [(r.event, r.payload.get("instanceId", "").rsplit("/", 1)[-1]) for r in requests] == [
        ("DeploymentStart", ""),
        ("InstanceStart", "web-1"),
        ("InstanceSuccess", "web-1"),
        ("InstanceStart", "web-2"),
        ("InstanceSuccess", "web-2"),
        ("DeploymentSuccess", ""),
    ]
    check_deployment_event(requests[0].payload, info, "DeploymentStart", "CREATED")
    check_deployment_event(requests[-1].payload, info, "DeploymentSuccess", "SUCCEEDED")
    targets = fleet.targets(deployment_id)
    for request in requests[1:-1]:
        host = request.payload["instanceId"].rsplit("/", 1)[-1]
        check_instance_event(request.payload, deployment_id, host, targets[host], request.event)

    secret = call_extension(
        fleet.server,
        "ShipyardGetTriggerSecret",
        {"applicationName": "shop", "deploymentGroupName": "web", "triggerName": "everything"},
    )["secret"]
    assert all(verify(r, secret) for r in requests)
    assert not any(verify(r, secret[::-1]) for r in requests)

    deliveries = settled(fleet, deployment_id, 6)
    assert [(d["eventType"], d["status"], d["attempts"]) for d in deliveries] == [
        (r.event, "Delivered", 1) for r in requests
    ]
    assert [str(d["id"]) for d in deliveries] == [
        r.headers["X-Shipyard-Delivery"] for r in requests
    ]
    assert all(d["url"] == receiver.url and d["triggerName"] == "everything" for d in deliveries)


def test_a_slow_webhook_does_not_slow_the_deployment(
    fleet: Fleet, upload: Uploader, slow_receiver: Receiver
) -> None:
    setup(fleet)
    create_group(fleet, "plain", None)
    create_group(fleet, "slow", slow_receiver.url)
    # A deployment that lasts a second: its first webhook is sent (every 0.2 s) while
    # it runs, so the test can see the deployment go on past a held webhook.
    revision = upload("shop/v1.zip", bundle("sleep 1"))

    begun = time.monotonic()
    deploy(fleet, "plain", revision)
    plain = time.monotonic() - begun

    begun = time.monotonic()
    deployment_id, _ = deploy(fleet, "slow", revision)
    ended = time.monotonic()
    slow = ended - begun

    # The webhook was held up while the deployment went on: six events at 5 s each
    # would be 30 s one after another; the deployment took about as long as without.
    first = slow_receiver.wait_for(1)[0]
    assert first.at < ended
    assert slow < SLOW_SECONDS, (plain, slow)
    assert slow < plain * 1.5 + 1.0, (plain, slow)

    deliveries = listed(fleet, deployment_id)
    assert sorted(d["eventType"] for d in deliveries) == sorted(
        ["DeploymentStart", "DeploymentSuccess", *["InstanceStart", "InstanceSuccess"] * 2]
    )
    slow_receiver.release()
    assert {d["status"] for d in settled(fleet, deployment_id, 6)} == {"Delivered"}
