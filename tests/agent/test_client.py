"""The agent's command-service client against a real local HTTP(S) server."""

from __future__ import annotations

import json
import platform
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from shipyard import __version__
from shipyard.agent.client import (
    AGENT_VERSION,
    CommandClient,
    ConnectionFailed,
    HostCommand,
    ProtocolError,
)
from shipyard.config import AgentConfig
from shipyard.engine import hosts, messages
from shipyard.engine.state import DeploymentState
from shipyard.model import DeploymentStatus
from shipyard.store import credentials, schema
from shipyard.store import deployments as deployment_store
from shipyard.store import host_commands as commands
from tests.agent.recording_server import HOST_ARN, agent_config, recording_server
from tests.conftest import LiveServer, free_port, start_live_server
from tests.support import last_seen, wait_until

COMMAND = {
    "HostCommandIdentifier": "42",
    "HostIdentifier": HOST_ARN,
    "DeploymentExecutionId": "d-ABCDEFGHI/42/ApplicationStart/web-1",
    "CommandName": "ApplicationStart",
    "Nonce": 42,
}


def test_poll_is_a_signed_json_request_and_returns_the_command(tmp_path: Path) -> None:
    with recording_server(lambda _op, _body: (200, {"HostCommand": COMMAND})) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        command = client.poll_host_command()
        client.close()
    assert command == HostCommand(
        "42",
        HOST_ARN,
        "d-ABCDEFGHI/42/ApplicationStart/web-1",
        "ApplicationStart",
        42,
        acknowledged=False,  # the answer did not say ShipyardAcknowledged
        from_poll=True,
    )
    [request] = server.requests
    assert request.operation == "PollHostCommand"
    assert request.body == {
        "HostIdentifier": HOST_ARN,
        "ShipyardPollSeconds": 1.0,
        "ShipyardSpecification": True,
        "ShipyardAcknowledge": True,
        "ShipyardAgentVersion": f"shipyard {__version__} (Python {platform.python_version()})",
    }
    assert request.signature_ok
    assert request.scope.endswith("/eu-west-3/codedeploy-commands/aws4_request")
    assert request.headers["x-amz-codedeploy-agent-version"] == AGENT_VERSION
    assert request.headers["content-type"] == "application/x-amz-json-1.1"


def test_an_empty_poll_means_no_command(tmp_path: Path) -> None:
    with recording_server() as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        assert client.poll_host_command() is None
        client.close()


def test_the_other_operations_send_json_diagnostics(tmp_path: Path) -> None:
    spec = {"DeploymentId": "d-ABCDEFGHI", "ApplicationName": "app"}

    def respond(operation: str, _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation == "GetDeploymentSpecification":
            envelope = {"Format": "TEXT/JSON", "Payload": json.dumps(spec)}
            return 200, {
                "DeploymentSystem": "CodeDeploy",
                "DeploymentSpecification": {"GenericEnvelope": envelope},
            }
        if operation == "PutHostCommandComplete":
            return 200, {}
        return 200, {"CommandStatus": "InProgress"}

    with recording_server(respond) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        assert client.get_specification("d-ABCDEFGHI/42/x/web-1") == spec
        assert client.acknowledge("42", is_noop=True) == "InProgress"
        assert client.post_update("42", "line one\n") == "InProgress"
        client.complete("42", "Failed", {"error_code": 4, "log": "boom"})
        client.close()
    spec_request, ack, update, complete = (r.body for r in server.requests)
    assert spec_request == {
        "DeploymentExecutionId": "d-ABCDEFGHI/42/x/web-1",
        "HostIdentifier": HOST_ARN,
        "ShipyardSpecification": True,  # plain JSON, not the stock agent's PKCS#7
    }
    assert ack["Diagnostics"]["Format"] == "JSON"
    assert json.loads(ack["Diagnostics"]["Payload"]) == {"IsCommandNoop": True}
    assert json.loads(update["Diagnostics"]["Payload"]) == {"log": "line one\n"}
    assert complete["CommandStatus"] == "Failed"
    assert json.loads(complete["Diagnostics"]["Payload"]) == {"error_code": 4, "log": "boom"}
    assert all(r.signature_ok for r in server.requests)


def test_a_service_error_is_a_typed_protocol_error(tmp_path: Path) -> None:
    answer = {"__type": "com.amazon.codedeploy#ClientException", "message": "Unknown command 9"}
    with recording_server(lambda _op, _body: (400, answer)) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        with pytest.raises(ProtocolError) as info:
            client.acknowledge("9", is_noop=False)
        client.close()
    assert (info.value.code, info.value.message, info.value.status) == (
        "ClientException",
        "Unknown command 9",
        400,
    )


def test_a_non_json_gateway_error_is_a_server_exception(tmp_path: Path) -> None:
    with recording_server(lambda _op, _body: (502, b"<html>Bad Gateway</html>")) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        with pytest.raises(ProtocolError) as info:
            client.poll_host_command()
        client.close()
    assert info.value.code == "ServerException"
    assert "HTTP 502" in info.value.message


def test_a_foreign_deployment_system_is_rejected(tmp_path: Path) -> None:
    with recording_server(lambda _op, _body: (200, {"DeploymentSystem": "Other"})) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        with pytest.raises(ProtocolError, match="DeploymentSystem"):
            client.get_specification("a/b/c/d")
        client.close()


def test_an_unreachable_server_is_connection_failed_on_one_line(tmp_path: Path) -> None:
    client = CommandClient(agent_config(f"http://127.0.0.1:{free_port()}", tmp_path))
    with pytest.raises(ConnectionFailed) as info:
        client.poll_host_command()
    assert "PollHostCommand: cannot reach http://127.0.0.1:" in str(info.value)
    assert "\n" not in str(info.value)


def test_each_thread_keeps_its_connection_alive(tmp_path: Path) -> None:
    with recording_server() as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        client.poll_host_command()
        client.poll_host_command()
        other = threading.Thread(target=client.poll_host_command)
        other.start()
        other.join()
        client.close()
        client.poll_host_command()  # after close(), a fresh connection
        client.close()
    first, second, from_other_thread, after_close = (r.client_port for r in server.requests)
    assert first == second
    assert from_other_thread != first
    assert after_close not in (first, from_other_thread)


def test_a_connection_the_server_dropped_is_replaced_transparently(tmp_path: Path) -> None:
    with recording_server() as server:
        server.drop_connections = True
        client = CommandClient(agent_config(server.url, tmp_path))
        for _ in range(3):
            assert client.poll_host_command() is None
        client.close()
    assert server.operations() == ["PollHostCommand"] * 3
    assert len({r.client_port for r in server.requests}) == 3


def test_shutdown_breaks_off_a_long_poll(tmp_path: Path) -> None:
    release = threading.Event()

    def hold(_op: str, _body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        release.wait(10)
        return 200, {}

    with recording_server(hold) as server:
        client = CommandClient(agent_config(server.url, tmp_path, poll_seconds=20.0))
        outcome: list[BaseException] = []

        def poll() -> None:
            try:
                client.poll_host_command()
            except ConnectionFailed as exc:
                outcome.append(exc)

        poller = threading.Thread(target=poll)
        poller.start()
        wait_until(lambda: server.requests, "the poll to reach the server", 5)
        client.shutdown()
        poller.join(5)
        release.set()
        assert not poller.is_alive()
        assert len(outcome) == 1
        with pytest.raises(ConnectionFailed):
            client.poll_host_command()  # a shut-down client stays shut
        client.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=shipyard-test"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_https_trusts_the_configured_ca_file(tmp_path: Path, certificate: tuple[str, str]) -> None:
    with recording_server(tls=certificate) as server:
        client = CommandClient(agent_config(server.url, tmp_path, ca_file=certificate[0]))
        assert client.poll_host_command() is None
        client.close()
        untrusting = CommandClient(agent_config(server.url, tmp_path))
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.poll_host_command()
    assert server.requests[0].signature_ok


def test_a_malformed_endpoint_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="endpoint must be an http"):
        CommandClient(agent_config("ftp://example", tmp_path))


def test_an_unreadable_ca_file_is_refused_up_front(tmp_path: Path) -> None:
    config = agent_config("https://127.0.0.1:1", tmp_path, ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="cannot load CA file"):
        CommandClient(config)


# ---- against the real server: the command service handlers -----------------------------

SERVER_POLL_SECONDS = 0.3


@dataclass
class Instance:
    name: str
    iam_arn: str
    config: AgentConfig
    opened: list[CommandClient] = field(default_factory=list)

    def client(self, **overrides: Any) -> CommandClient:
        client = CommandClient(replace(self.config, **overrides))
        self.opened.append(client)
        return client


Register = Callable[..., Instance]


@pytest.fixture
def agent_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server whose PollHostCommand gives up after a fraction of a second."""
    yield from start_live_server(tmp_path / "server", poll_seconds=SERVER_POLL_SECONDS)


@pytest.fixture
def register(agent_server: LiveServer, tmp_path: Path) -> Iterator[Register]:
    """Register on-premises instances with boto3 and issue their agent keys."""
    made: list[Instance] = []

    def make(name: str = "web-1") -> Instance:
        arn = f"arn:aws:iam::000000000000:user/shipyard/{name}"
        codedeploy = agent_server.client("codedeploy")
        codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=arn)
        with agent_server.services.db.tx() as conn:
            key_id, secret = credentials.issue(
                conn, agent_server.services.db.secret_box, "instance", name, time.time()
            )
        config = agent_config(
            agent_server.url,
            tmp_path / name,
            instance_name=name,
            access_key_id=key_id,
            secret_access_key=secret,
            host_identifier=arn,
            region=agent_server.region,
        )
        made.append(Instance(name, arn, config))
        return made[-1]

    yield make
    for instance in made:
        for client in instance.opened:
            client.close()


def queue_command(server: LiveServer, instance: str, name: str = "ApplicationStart") -> int:
    """Start a one-host, one-event deployment; return the command the engine queued."""
    state = DeploymentState(
        deployment_id="d-PROTOCOL1",
        status=DeploymentStatus.CREATED,
        health_rule={"type": "HOST_COUNT", "value": 0},
        event_timeout=60.0,
        create_time=time.time(),
        targets={instance: hosts.new_target(instance, (name,))},
    )
    info = {"deploymentGroupId": "g-1", "revision": None}
    with server.services.db.tx() as conn:
        deployment_store.insert(conn, state, info, "app", "group")
    server.services.runner.apply("d-PROTOCOL1", messages.Start())
    with server.services.db.tx() as conn:
        row = conn.execute(
            select(schema.host_commands.c.id).where(
                schema.host_commands.c.deployment_id == "d-PROTOCOL1"
            )
        ).scalar_one()
    return int(row)


def command_row(server: LiveServer, command_id: int) -> Any:
    with server.services.db.tx() as conn:
        return commands.get_command(conn, command_id)


def test_server_hands_a_queued_command_through_its_whole_life(
    agent_server: LiveServer, register: Register
) -> None:
    web = register()
    client = web.client()
    assert client.poll_host_command() is None  # nothing queued: the poll times out empty
    command_id = queue_command(agent_server, web.name)
    command = client.poll_host_command()
    assert command is not None
    assert command.command_id == str(command_id)
    assert command.command_name == "ApplicationStart"
    assert command.host_identifier == web.iam_arn
    assert command.execution_id.startswith("d-PROTOCOL1/")
    assert client.acknowledge(command.command_id, is_noop=False) == "InProgress"
    assert client.post_update(command.command_id, "hello from the hook\n") == "InProgress"
    client.complete(command.command_id, "Succeeded", {"error_code": 0, "log": "done"})
    client.close()
    assert command_row(agent_server, command_id).status == "Succeeded"
    with agent_server.services.db.tx() as conn:
        logs = deployment_store.read_logs(conn, "d-PROTOCOL1", web.name, None)
    assert logs == [("ApplicationStart", "hello from the hook\n")]


def test_each_poll_is_a_heartbeat(agent_server: LiveServer, register: Register) -> None:
    web = register()
    before = time.time()
    web.client().poll_host_command()
    seen = last_seen(agent_server, web.name)
    assert seen is not None and seen >= before - 1


def test_admin_keys_may_not_poll(agent_server: LiveServer, register: Register) -> None:
    web = register()
    admin = web.client(
        access_key_id=agent_server.access_key_id,
        secret_access_key=agent_server.secret_access_key,
    )
    with pytest.raises(ProtocolError) as info:
        admin.poll_host_command()
    assert info.value.code == "AccessDeniedException"


def test_an_instance_may_not_speak_for_another_host(register: Register) -> None:
    web, db = register("web-1"), register("db-1")
    impostor = web.client(host_identifier=db.iam_arn)
    with pytest.raises(ProtocolError, match="does not belong to instance web-1") as info:
        impostor.poll_host_command()
    assert info.value.code == "ClientException"
    with pytest.raises(ProtocolError, match="does not belong"):
        impostor.get_specification("d-PROTOCOL1/1/ApplicationStart/web-1")
    # A longer identifier that contains the registered ARN is accepted (stock agent rule).
    assert web.client(host_identifier=web.iam_arn + "-suffix").poll_host_command() is None


def test_an_instance_cannot_touch_another_instances_command(
    agent_server: LiveServer, register: Register
) -> None:
    web, db = register("web-1"), register("db-1")
    command_id = str(queue_command(agent_server, db.name))
    with pytest.raises(ProtocolError, match=f"Unknown host command {command_id}"):
        web.client().acknowledge(command_id, is_noop=False)
    with pytest.raises(ProtocolError, match="Unknown deployment execution"):
        web.client().get_specification(f"d-PROTOCOL1/{command_id}/ApplicationStart/db-1")


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        ("PollHostCommand", {}, "HostIdentifier is required"),
        ("PutHostCommandAcknowledgement", {}, "HostCommandIdentifier is required"),
        ("PutHostCommandAcknowledgement", {"HostCommandIdentifier": 5}, "must be a string"),
        ("GetDeploymentSpecification", {"HostIdentifier": "x"}, "DeploymentExecutionId is"),
        ("PostHostCommandUpdate", {"HostCommandIdentifier": "1"}, "Diagnostics is required"),
        (
            "PostHostCommandUpdate",
            {"HostCommandIdentifier": "1", "Diagnostics": {"Format": "JSON", "Payload": "{oops"}},
            "Payload is not valid JSON",
        ),
        (
            "PostHostCommandUpdate",
            {"HostCommandIdentifier": "1", "Diagnostics": {"Format": "XML", "Payload": "{}"}},
            "Format must be JSON",
        ),
        (
            "PutHostCommandComplete",
            {"HostCommandIdentifier": "1", "CommandStatus": "Pending"},
            "CommandStatus must be Succeeded or Failed",
        ),
        (
            "PutHostCommandComplete",
            {
                "HostCommandIdentifier": "1",
                "CommandStatus": "Failed",
                "Diagnostics": {"Format": "JSON", "Payload": '{"error_code": "four"}'},
            },
            "error_code has the wrong type",
        ),
        (
            "PutHostCommandComplete",
            {"HostCommandIdentifier": "x1", "CommandStatus": "Failed"},
            "Unknown host command 'x1'",
        ),
    ],
)
def test_malformed_requests_are_client_exceptions(
    register: Register, operation: str, body: dict[str, Any], message: str
) -> None:
    web = register()
    with pytest.raises(ProtocolError) as info:
        web.client().call(operation, body)
    assert info.value.code == "ClientException"
    assert message in info.value.message
