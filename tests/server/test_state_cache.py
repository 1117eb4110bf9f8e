"""The runner's cache of deployment states is bounded: with replicas, a deployment this
one stepped may finish on another, and its entry must not stay for good. An entry
dropped is read again from the database."""

from __future__ import annotations

import pytest

from shipyard.runner import core
from tests.conftest import LiveServer


def _start(server: LiveServer, group: str) -> str:
    """A deployment to one host whose agent never polls: it stays in progress."""
    cd = server.client("codedeploy")
    host = f"{group}-1"
    cd.register_on_premises_instance(
        instanceName=host, iamUserArn=f"arn:aws:iam::000000000000:user/shipyard/{host}"
    )
    cd.add_tags_to_on_premises_instances(
        instanceNames=[host], tags=[{"Key": "group", "Value": group}]
    )
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName=group,
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "group", "Value": group, "Type": "KEY_AND_VALUE"}],
    )
    location = {"bucket": "bundles", "key": "v1.zip", "bundleType": "zip"}
    deployment_id: str = cd.create_deployment(
        applicationName="shop",
        deploymentGroupName=group,
        revision={"revisionType": "S3", "s3Location": location},
    )["deploymentId"]
    return deployment_id


def test_cached_states_are_bounded_and_an_evicted_one_is_read_again(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "MAX_CACHED_STATES", 2)
    live_server.client("codedeploy").create_application(applicationName="shop")
    s3 = live_server.client("s3")
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="v1.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    started = [_start(live_server, group) for group in ("a", "b", "c")]
    runner = live_server.services.runner
    assert runner.cached(started[0]) is None  # the oldest went first
    assert runner.cached(started[1]) is not None and runner.cached(started[2]) is not None
    evicted = runner.current(started[0])
    assert evicted is not None and evicted.state.deployment_id == started[0]
    assert evicted.state.status.value == "InProgress"
