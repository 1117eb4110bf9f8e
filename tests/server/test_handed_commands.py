"""Shipyard's agent protocol extensions: the specification on the poll answer, the
command handed out acknowledged by the poll, and the next command handed back, already
acknowledged, with a completion.

A real server and the agent's own client play one host by hand, so every answer can
be checked; the full agent runs them in tests/e2e.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shipyard.agent.client import CommandClient, HostCommand, ProtocolError
from shipyard.engine.lifecycle import IN_PLACE
from shipyard.store import schema
from tests.conftest import LiveServer, start_live_server
from tests.server.crud_support import ROLE_ARN
from tests.support import issued_agent_config

SUCCESS = {"error_code": 0, "script_name": "", "message": "Succeeded", "log": ""}
EVENTS = IN_PLACE
REOFFER_SECONDS = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The module's server, offering an unacknowledged claim again after a second."""
    data_dir = tmp_path_factory.mktemp("handed") / "server"
    yield from start_live_server(data_dir, reoffer_seconds=REOFFER_SECONDS)


@pytest.fixture
def host(server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest) -> CommandClient:
    """A registered instance (named after the test) in a group of its own."""
    name = request.node.name.replace("_", "-")[:40]
    cd = server.client("codedeploy")
    cd.register_on_premises_instance(
        instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
    )
    cd.add_tags_to_on_premises_instances(instanceNames=[name], tags=[{"Key": name, "Value": "y"}])
    cd.create_application(applicationName=name)
    cd.create_deployment_group(
        applicationName=name,
        deploymentGroupName=name,
        serviceRoleArn=ROLE_ARN,
        onPremisesInstanceTagFilters=[{"Key": name, "Value": "y", "Type": "KEY_AND_VALUE"}],
    )
    client = CommandClient(issued_agent_config(server, name, tmp_path, poll_seconds=5.0))
    request.addfinalizer(client.close)
    return client


def _deploy(server: LiveServer, name: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
    s3 = server.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="app.zip", Body=buffer.getvalue())
    deployment = server.client("codedeploy").create_deployment(
        applicationName=name,
        deploymentGroupName=name,
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": name, "key": "app.zip", "bundleType": "zip"},
        },
    )
    return str(deployment["deploymentId"])


def _commands(server: LiveServer, deployment_id: str) -> list[tuple[str, str, bool]]:
    """(event, status, acknowledged) of the deployment's host commands, in order."""
    h = schema.host_commands.c
    with server.services.db.tx() as conn:
        rows = conn.execute(
            select(h.command_name, h.status, h.acknowledged)
            .where(h.deployment_id == deployment_id)
            .order_by(h.id)
        )
        return [(r[0], r[1], r[2] is not None) for r in rows]


def _first(host: CommandClient) -> HostCommand:
    command = host.poll_host_command()
    assert command is not None
    assert host.acknowledge(command.command_id, is_noop=False) == "InProgress"
    return command


def test_the_poll_answer_carries_the_specification(server: LiveServer, host: CommandClient) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    command = host.poll_host_command()
    assert command is not None and command.command_name == "ApplicationStop"
    assert command.specification is not None
    assert command.specification["DeploymentId"] == deployment_id
    assert command.specification == host.get_specification(command.execution_id)


def test_each_completion_hands_back_the_next_event_acknowledged(
    server: LiveServer, host: CommandClient
) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    command: HostCommand | None = _first(host)
    ran = []
    while command is not None:
        ran.append(command.command_name)
        command = host.complete(command.command_id, "Succeeded", SUCCESS, then_next=True)
        if command is not None:
            assert command.acknowledged
            assert command.host_identifier == host._config.host_identifier
    assert tuple(ran) == EVENTS
    # Handed commands were never polled for nor acknowledged by the agent, yet every
    # one is recorded as acknowledged and finished, and the deployment succeeded.
    assert _commands(server, deployment_id) == [(e, "Succeeded", True) for e in EVENTS]
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Succeeded"
    events = _lifecycle(server, deployment_id, host)
    assert [e["status"] for e in events] == ["Succeeded"] * 7
    assert all("startTime" in e for e in events)


def test_a_retried_completion_hands_back_the_same_command(
    server: LiveServer, host: CommandClient
) -> None:
    """The first answer may be lost with the command it carried: the retry gets it."""
    deployment_id = _deploy(server, host._config.instance_name)
    first = _first(host)
    handed = host.complete(first.command_id, "Succeeded", SUCCESS, then_next=True)
    again = host.complete(first.command_id, "Succeeded", SUCCESS, then_next=True)
    assert handed is not None and again == handed
    assert handed.command_name == "DownloadBundle"
    # Nothing was queued twice, and the retry did not count as a second result.
    assert [c[0] for c in _commands(server, deployment_id)] == ["ApplicationStop", "DownloadBundle"]


def test_without_the_extension_the_next_event_waits_for_a_poll(
    server: LiveServer, host: CommandClient
) -> None:
    """A stock agent's completion: nothing handed back; the poll and its
    acknowledgement work as before."""
    deployment_id = _deploy(server, host._config.instance_name)
    first = _first(host)
    assert host.complete(first.command_id, "Succeeded", SUCCESS) is None
    assert _commands(server, deployment_id)[-1] == ("DownloadBundle", "Pending", False)
    polled = host.call("PollHostCommand", {"HostIdentifier": host._config.host_identifier})
    assert polled["HostCommand"]["CommandName"] == "DownloadBundle"
    assert "ShipyardAcknowledged" not in polled["HostCommand"]
    command_id = polled["HostCommand"]["HostCommandIdentifier"]
    assert host.acknowledge(command_id, is_noop=False) == "InProgress"


def _lifecycle(server: LiveServer, deployment_id: str, host: CommandClient) -> list[Any]:
    target = server.client("codedeploy").get_deployment_target(
        deploymentId=deployment_id, targetId=host._config.instance_name
    )["deploymentTarget"]["instanceTarget"]
    return list(target["lifecycleEvents"])


def test_a_poll_hands_the_command_acknowledged(server: LiveServer, host: CommandClient) -> None:
    """Shipyard's agent asks for the command acknowledged: the engine has it running
    (with its start time) before the agent says a word more."""
    deployment_id = _deploy(server, host._config.instance_name)
    polled = host.poll_host_command()
    assert polled is not None and polled.acknowledged and polled.command_name == "ApplicationStop"
    first = _lifecycle(server, deployment_id, host)[0]
    assert first["status"] == "InProgress" and "startTime" in first
    command: HostCommand | None = polled
    ran = []
    while command is not None:
        ran.append(command.command_name)
        command = host.complete(command.command_id, "Succeeded", SUCCESS, then_next=True)
    assert tuple(ran) == EVENTS
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Succeeded"


def test_a_lost_poll_answer_is_offered_again_acknowledged(
    server: LiveServer, host: CommandClient
) -> None:
    """The poll's answer never reached the agent: the claim stays open to a later poll
    (the agent ignores an offer of a command it holds or has run)."""
    deployment_id = _deploy(server, host._config.instance_name)
    lost = host.poll_host_command()
    assert lost is not None and lost.acknowledged
    claimed = time.monotonic()
    # The next poll is held until the offer is due again: the first answer may only be
    # slow, and an agent that got it would ignore the offer.
    again = host.poll_host_command()
    assert time.monotonic() - claimed >= REOFFER_SECONDS
    assert again is not None and again.command_id == lost.command_id and again.acknowledged
    assert host.complete(again.command_id, "Succeeded", SUCCESS, then_next=True) is not None
    assert [c[:2] for c in _commands(server, deployment_id)] == [
        ("ApplicationStop", "Succeeded"),
        ("DownloadBundle", "InProgress"),
    ]


def test_a_poll_hands_out_nothing_of_a_deployment_stopped_before_it(
    server: LiveServer, host: CommandClient
) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    server.client("codedeploy").stop_deployment(deploymentId=deployment_id)
    assert host.poll_host_command() is None
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Stopped"
    assert [c[1] for c in _commands(server, deployment_id)] in ([], ["Failed"])


def test_a_failed_event_hands_back_nothing(server: LiveServer, host: CommandClient) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    first = _first(host)
    failed = {**SUCCESS, "error_code": 4, "message": "script failed"}
    assert host.complete(first.command_id, "Failed", failed, then_next=True) is None
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Failed"


def test_a_malformed_extension_member_is_refused(server: LiveServer, host: CommandClient) -> None:
    _deploy(server, host._config.instance_name)
    first = _first(host)
    body = {
        "HostCommandIdentifier": first.command_id,
        "CommandStatus": "Succeeded",
        "ShipyardNextCommand": "yes",
    }
    with pytest.raises(ProtocolError) as refused:
        host.call("PutHostCommandComplete", body)
    assert refused.value.code == "ClientException"
    assert "ShipyardNextCommand" in refused.value.message
    poll: dict[str, Any] = {"HostIdentifier": host._config.host_identifier}
    for member in ("ShipyardSpecification", "ShipyardAcknowledge"):
        with pytest.raises(ProtocolError) as refused:
            host.call("PollHostCommand", {**poll, member: 1})
        assert refused.value.code == "ClientException"
        assert member in refused.value.message
    # The refused completion changed nothing: the event still runs.
    assert host.complete(first.command_id, "Succeeded", SUCCESS, then_next=True) is not None


def test_events_the_agent_names_as_no_ops_are_completed_for_it(
    server: LiveServer, host: CommandClient
) -> None:
    """``ShipyardNoopEvents`` with a result: a named hook event dispatched next is
    completed by the server, and the answer carries the first event with work."""
    deployment_id = _deploy(server, host._config.instance_name)
    noops = {"BeforeInstall", "AfterInstall", "ValidateService"}  # not ApplicationStart
    command: HostCommand | None = _first(host)
    ran = []
    while command is not None:
        ran.append(command.command_name)
        command = host.complete(
            command.command_id, "Succeeded", SUCCESS, then_next=True, noop_events=noops
        )
    assert ran == ["ApplicationStop", "DownloadBundle", "Install", "ApplicationStart"]
    # Every event has its command, finished, and the engine stepped through each.
    assert _commands(server, deployment_id) == [(e, "Succeeded", True) for e in EVENTS]
    events = _lifecycle(server, deployment_id, host)
    assert [(e["lifecycleEventName"], e["status"]) for e in events] == [
        (e, "Succeeded") for e in EVENTS
    ]
    skipped = events[EVENTS.index("BeforeInstall")]
    assert skipped["diagnostics"]["errorCode"] == "Success"
    assert skipped["startTime"] <= skipped["endTime"]
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Succeeded"


def test_no_ops_are_not_completed_after_a_repeat_or_a_failure(
    server: LiveServer, host: CommandClient
) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    download = host.complete(_first(host).command_id, "Succeeded", SUCCESS, then_next=True)
    assert download is not None and download.command_name == "DownloadBundle"
    after = {"AfterInstall", "ApplicationStart", "ValidateService"}
    install = host.complete(
        download.command_id, "Succeeded", SUCCESS, then_next=True, noop_events={"BeforeInstall"}
    )
    assert install is not None and install.command_name == "Install"
    # A repeated completion hands back the same command, and completes nothing more.
    again = host.complete(
        download.command_id, "Succeeded", SUCCESS, then_next=True, noop_events=after
    )
    assert again == install
    failed = {**SUCCESS, "error_code": 4, "message": "no space left"}
    assert (
        host.complete(install.command_id, "Failed", failed, then_next=True, noop_events=after)
        is None
    )
    assert [c[:2] for c in _commands(server, deployment_id)] == [
        ("ApplicationStop", "Succeeded"),
        ("DownloadBundle", "Succeeded"),
        ("BeforeInstall", "Succeeded"),
        ("Install", "Failed"),
    ]
    info = server.client("codedeploy").get_deployment(deploymentId=deployment_id)
    assert info["deploymentInfo"]["status"] == "Failed"


def test_a_malformed_noop_list_is_refused(server: LiveServer, host: CommandClient) -> None:
    """Only hook events may be named: DownloadBundle and Install always have work."""
    deployment_id = _deploy(server, host._config.instance_name)
    first = _first(host)
    body = {
        "HostCommandIdentifier": first.command_id,
        "CommandStatus": "Succeeded",
        "ShipyardNextCommand": True,
    }
    for value in ("BeforeInstall", ["Install"], ["DownloadBundle"], [{"a": 1}], ["NoHook"]):
        with pytest.raises(ProtocolError) as refused:
            host.call("PutHostCommandComplete", {**body, "ShipyardNoopEvents": value})
        assert refused.value.code == "ClientException"
        assert "ShipyardNoopEvents" in refused.value.message
    # Nothing was recorded: the event still runs.
    assert _commands(server, deployment_id) == [("ApplicationStop", "InProgress", True)]
