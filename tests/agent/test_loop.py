"""The agent loop: tracking files, crash recovery, output streaming, the command flow.

The loop runs in-process against a recording command service on loopback, with real
hook scripts; the end-to-end tests at the bottom run ``python -m shipyard.agent`` as a
subprocess against the real server.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shipyard.agent.client import CommandClient, ConnectionFailed, ProtocolError
from shipyard.agent.loop import (
    RESTARTED_MESSAGE,
    backoff_delay,
    recover_interrupted,
    run_agent,
    with_retries,
)
from shipyard.agent.state import KEPT_OPEN, MAX_AGE_SECONDS, CommandTracker
from shipyard.agent.stream import OutputStreamer
from shipyard.config import AgentConfig, agent_config_to_yaml
from shipyard.store import credentials
from tests.agent.recording_server import HOST_ARN, RecordingServer, agent_config, recording_server
from tests.conftest import LiveServer, free_port, start_live_server
from tests.support import last_seen, wait_until

DEPLOYMENT = "d-LOOPTEST1"
GROUP_ID = "6f0c1e4e-group"


# ---- tracking files --------------------------------------------------------------------


def test_a_tracked_command_is_interrupted_until_it_ends(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path)
    tracker.begin(DEPLOYMENT, "17")
    [found] = tracker.interrupted(time.time())
    assert (found.deployment_id, found.command_id) == (DEPLOYMENT, "17")
    assert (tmp_path / "ongoing-deployment" / DEPLOYMENT).read_text().rstrip() == "17"
    tracker.end(DEPLOYMENT)
    assert tracker.interrupted(time.time()) == []


def test_tracking_files_are_rewritten_in_place_and_only_recent_ones_kept(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path)
    tracker.begin("d-RUNNING01", "1")  # still running when the others come and go
    tracking = tmp_path / "ongoing-deployment"
    inode = None
    for number in range(KEPT_OPEN + 3):
        deployment_id = f"d-DONE{number:05d}"
        for command_id in ("20", "21"):
            tracker.begin(deployment_id, command_id)
            assert tracker.holds(deployment_id, command_id)
            tracker.end(deployment_id)
            assert not tracker.holds(deployment_id, command_id)
            if number == 0:  # the same file, rewritten: not created again per command
                current = (tracking / deployment_id).stat().st_ino
                assert inode in (None, current)
                inode = current
    kept = sorted(path.name for path in tracking.iterdir())
    # KEPT_OPEN files in all, the running deployment's among them
    recent = [f"d-DONE{n:05d}" for n in range(4, KEPT_OPEN + 3)]
    assert kept == sorted(["d-RUNNING01", *recent])
    assert [c.command_id for c in tracker.interrupted(time.time())] == ["1"]


def test_an_empty_tracking_file_is_not_an_interrupted_command(tmp_path: Path) -> None:
    """What a kill between creating the file and writing the id leaves: the command had
    not started, so there is nothing to report (as with no file at all)."""
    tracker = CommandTracker(tmp_path)
    tracker.begin(DEPLOYMENT, "17")
    (tracker.directory / DEPLOYMENT).write_text("")
    assert tracker.interrupted(time.time()) == []


def test_tracking_survives_its_directory_being_removed(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path)
    tracker.begin(DEPLOYMENT, "17")
    tracker.clear()
    tracker.directory.rmdir()
    tracker.end(DEPLOYMENT)  # nothing to forget: no error either
    tracker.begin(DEPLOYMENT, "18")
    assert [c.command_id for c in tracker.interrupted(time.time())] == ["18"]


def test_tracking_files_older_than_a_day_are_ignored_and_cleared(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path)
    tracker.begin("d-OLD000001", "1")
    tracker.begin("d-NEW000001", "2")
    old = time.time() - MAX_AGE_SECONDS - 60
    os.utime(tracker.directory / "d-OLD000001", (old, old))
    assert [c.command_id for c in tracker.interrupted(time.time())] == ["2"]
    tracker.clear()
    assert list(tracker.directory.iterdir()) == []


@pytest.mark.parametrize("deployment_id", ["../../etc/passwd", "d-TRAILING1\n"])
def test_a_deployment_id_cannot_escape_the_tracking_directory(
    tmp_path: Path, deployment_id: str
) -> None:
    with pytest.raises(ValueError, match="not a safe file name"):
        CommandTracker(tmp_path).begin(deployment_id, "1")
    assert not (tmp_path / "ongoing-deployment" / deployment_id).exists()


# ---- crash recovery --------------------------------------------------------------------


def test_recovery_reports_each_recent_interrupted_command_as_error_7(tmp_path: Path) -> None:
    config_root = tmp_path / "root"
    tracker = CommandTracker(config_root)
    tracker.begin("d-AAAAAAAA1", "11")
    tracker.begin("d-BBBBBBBB2", "12")
    tracker.begin("d-CCCCCCCC3", "13")
    stale = time.time() - MAX_AGE_SECONDS - 1
    os.utime(tracker.directory / "d-CCCCCCCC3", (stale, stale))
    with recording_server() as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        recover_interrupted(client, tracker, threading.Event(), time.time())
        client.close()
    completions = server.bodies("PutHostCommandComplete")
    assert sorted(c["HostCommandIdentifier"] for c in completions) == ["11", "12"]
    for completion in completions:
        assert completion["CommandStatus"] == "Failed"
        payload = json.loads(completion["Diagnostics"]["Payload"])
        assert payload == {
            "error_code": 7,
            "script_name": "",
            "message": RESTARTED_MESSAGE,
            "log": "",
        }
    assert list(tracker.directory.iterdir()) == []


def test_recovery_forgets_a_command_the_server_refuses(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path / "root")
    tracker.begin(DEPLOYMENT, "99")
    refuse = {"__type": "ClientException", "message": "Unknown host command 99"}
    with recording_server(lambda _op, _body: (400, refuse)) as server:
        client = CommandClient(agent_config(server.url, tmp_path))
        recover_interrupted(client, tracker, threading.Event(), time.time())
        client.close()
    assert server.operations() == ["PutHostCommandComplete"]
    assert tracker.interrupted(time.time()) == []


def test_recovery_keeps_the_file_when_stopped_before_the_server_answers(tmp_path: Path) -> None:
    tracker = CommandTracker(tmp_path / "root")
    tracker.begin(DEPLOYMENT, "5")
    client = CommandClient(agent_config(f"http://127.0.0.1:{free_port()}", tmp_path))
    stop = threading.Event()
    stop.set()
    recover_interrupted(client, tracker, stop, time.time())
    assert [c.command_id for c in tracker.interrupted(time.time())] == ["5"]


# ---- backoff ---------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_to_thirty_with_jitter() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (50, 30.0)]:
        delays = [backoff_delay(failures, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_unavailable_answers_are_retried_and_refusals_are_not() -> None:
    """A 503 (the server's database away) or a proxy's 502/504 means "not now": the
    call is made again. A 4xx refusal is final."""
    answers: list[Exception | str] = [
        ProtocolError("ServiceUnavailableException", "The database is unreachable", 503),
        ProtocolError("ServerException", "HTTP 502 from the proxy", 502),
        "done",
    ]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_retries(call, "a call", give_up_after=30) == "done"
    assert answers == []
    refused = ProtocolError("ClientException", "Unknown host command 5", 400)
    calls: list[int] = []

    def refuse() -> str:
        calls.append(1)
        raise refused

    with pytest.raises(ProtocolError):
        with_retries(refuse, "a call", give_up_after=30)
    assert calls == [1]


# ---- output streaming ------------------------------------------------------------------


class Posts:
    """Records PostHostCommandUpdate calls; can fail or hold them like a bad network."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, str]] = []
        self.failures_left = 0
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, command_id: str, chunk: str) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionFailed("PostHostCommandUpdate: cannot reach the server")
        self.chunks.append((command_id, chunk))

    def text(self, command_id: str) -> str:
        return "".join(chunk for cid, chunk in self.chunks if cid == command_id)


@contextmanager
def streamer(posts: Posts, **options: Any) -> Iterator[OutputStreamer]:
    stream = OutputStreamer(posts, **options)
    stream.start()
    try:
        yield stream
    finally:
        stream.stop()


def test_output_written_quickly_goes_out_in_one_batch() -> None:
    posts = Posts()
    with streamer(posts, interval=5.0) as stream:
        write = stream.open("1")
        for n in range(100):
            write(f"line {n}\n")
        assert stream.finish("1", timeout=5)
    assert posts.chunks == [("1", "".join(f"line {n}\n" for n in range(100)))]


def test_a_full_batch_is_sent_without_waiting_for_the_interval() -> None:
    posts = Posts()
    with streamer(posts, interval=60.0, batch_bytes=1024) as stream:
        write = stream.open("1")
        write("x" * 2000)
        wait_until(lambda: posts.chunks, "the full batch to go out", 5)
        assert posts.text("1") == "x" * 2000
        stream.finish("1", timeout=5)


def test_writes_never_wait_for_the_network_and_order_survives_failures() -> None:
    posts = Posts()
    posts.release.clear()  # the "server" hangs
    posts.failures_left = 2  # and then fails twice
    with streamer(posts, interval=0.01) as stream:
        first, second = stream.open("a"), stream.open("b")
        first("a-1\n")
        assert posts.entered.wait(5)  # the flusher is now stuck in a post

        def script_output() -> None:
            for n in range(1000):
                first(f"a{n}\n")
                second(f"b{n}\n")

        writer = threading.Thread(target=script_output)
        writer.start()
        writer.join(5)
        assert not writer.is_alive()  # all written while the post is still hanging
        assert not posts.chunks
        posts.release.set()
        assert stream.finish("a", timeout=10)
        assert stream.finish("b", timeout=10)
    assert posts.text("a") == "a-1\n" + "".join(f"a{n}\n" for n in range(1000))
    assert posts.text("b") == "".join(f"b{n}\n" for n in range(1000))


def test_output_beyond_the_pending_limit_is_dropped_oldest_first_and_said_so() -> None:
    posts = Posts()
    posts.release.clear()
    with streamer(posts, interval=0.01, max_pending=100) as stream:
        write = stream.open("1")
        write("first\n")  # may already be in flight to the hung server
        for n in range(50):
            write(f"filler line {n:02}\n")
        posts.release.set()
        assert stream.finish("1", timeout=5)
    text = posts.text("1")
    assert "characters of output dropped: server unreachable]" in text
    assert text.endswith("filler line 49\n")
    assert "filler line 00" not in text


def test_writes_after_finish_are_ignored() -> None:
    posts = Posts()
    with streamer(posts) as stream:
        write = stream.open("1")
        write("kept\n")
        stream.finish("1", timeout=5)
        write("late\n")
    assert posts.text("1") == "kept\n"


# ---- the command flow, in-process --------------------------------------------------------


def spec_payload(deployment_id: str = DEPLOYMENT, group_id: str = GROUP_ID) -> dict[str, Any]:
    return {
        "DeploymentId": deployment_id,
        "DeploymentGroupId": group_id,
        "DeploymentGroupName": "web",
        "ApplicationName": "shop",
        "DeploymentCreator": "user",
        "DeploymentType": "IN_PLACE",
        "AppSpecFilename": "appspec.yml",
        "Revision": {
            "RevisionType": "S3",
            "S3Revision": {"Bucket": "b", "Key": "k.tar", "BundleType": "tar"},
        },
        "AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "DISALLOW"}},
    }


def unpacked_revision(
    root: Path, hooks: dict[str, str], deployment_id: str = DEPLOYMENT, group_id: str = GROUP_ID
) -> None:
    """An already-downloaded revision whose hooks are the given shell scripts."""
    archive = root / group_id / deployment_id / "deployment-archive"
    (archive / "scripts").mkdir(parents=True)
    lines = ["version: 0.0", "os: linux", "hooks:"]
    for event, body in hooks.items():
        script = archive / "scripts" / f"{event}.sh"
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
        lines += [f"  {event}:", f"    - location: scripts/{event}.sh", "      timeout: 10"]
    (archive / "appspec.yml").write_text("\n".join(lines) + "\n")


class Service:
    """Scripted command-service answers: commands to hand out, then idle polls."""

    def __init__(self, commands: list[dict[str, Any]], ack_status: str = "InProgress") -> None:
        self.commands = list(commands)
        self.ack_status = ack_status
        self.specs: dict[str, dict[str, Any]] = {}
        self.completed = threading.Event()
        self.expected_completions = len(commands)
        self.lock = threading.Lock()

    def __call__(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation == "PollHostCommand":
            with self.lock:
                if self.commands:
                    return 200, {"HostCommand": self.commands.pop(0)}
            time.sleep(0.02)  # a short "long poll"
            return 200, {}
        with self.lock:
            if operation == "GetDeploymentSpecification":
                payload = json.dumps(self.specs[body["DeploymentExecutionId"]])
                return 200, {
                    "DeploymentSystem": "CodeDeploy",
                    "DeploymentSpecification": {
                        "GenericEnvelope": {"Format": "TEXT/JSON", "Payload": payload}
                    },
                }
            if operation == "PutHostCommandAcknowledgement":
                return 200, {"CommandStatus": self.ack_status}
            if operation == "PostHostCommandUpdate":
                return 200, {"CommandStatus": "InProgress"}
            self.expected_completions -= 1
            if self.expected_completions <= 0:
                self.completed.set()
            return 200, {}

    def add(
        self, command_id: str, name: str, spec: dict[str, Any], *, acknowledged: bool = False
    ) -> None:
        execution_id = f"{spec['DeploymentId']}/{command_id}/{name}/web-1"
        self.specs[execution_id] = spec
        command: dict[str, Any] = {
            "HostCommandIdentifier": command_id,
            "HostIdentifier": HOST_ARN,
            "DeploymentExecutionId": execution_id,
            "CommandName": name,
            "Nonce": 0,
        }
        if acknowledged:  # as Shipyard's server answers a poll with ShipyardAcknowledge
            command["ShipyardAcknowledged"] = True
        self.commands.append(command)
        self.expected_completions += 1


@contextmanager
def running_agent(config: AgentConfig) -> Iterator[threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_agent, args=(config, stop))
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def run_commands(
    tmp_path: Path, service: Service, prepare: Callable[[Path], None] = lambda _root: None
) -> tuple[RecordingServer, AgentConfig]:
    with recording_server(service) as server:
        config = agent_config(server.url, tmp_path)
        prepare(config.root_dir)
        with running_agent(config):
            assert service.completed.wait(10)
    return server, config


def completion(server: RecordingServer, command_id: str) -> tuple[str, dict[str, Any]]:
    [body] = [
        b
        for b in server.bodies("PutHostCommandComplete")
        if b["HostCommandIdentifier"] == command_id
    ]
    return body["CommandStatus"], json.loads(body["Diagnostics"]["Payload"])


def test_a_hook_runs_tracked_and_streamed_and_its_result_is_reported(tmp_path: Path) -> None:
    service = Service([])
    service.add("42", "ApplicationStart", spec_payload())

    def prepare(root: Path) -> None:
        tracking = root / "ongoing-deployment" / DEPLOYMENT
        script = f'echo "starting"\necho "tracked as $(cat {tracking})"\n'
        unpacked_revision(root, {"ApplicationStart": script})
        root.chmod(0o755)  # as an older agent left it

    server, config = run_commands(tmp_path, service, prepare)
    assert stat.S_IMODE(config.root_dir.stat().st_mode) == 0o700  # closed at start
    operations = [op for op in server.operations() if op != "PollHostCommand"]
    assert operations[:2] == ["GetDeploymentSpecification", "PutHostCommandAcknowledgement"]
    assert operations[-1] == "PutHostCommandComplete"
    [ack] = server.bodies("PutHostCommandAcknowledgement")
    assert json.loads(ack["Diagnostics"]["Payload"]) == {"IsCommandNoop": False}
    streamed = "".join(
        json.loads(b["Diagnostics"]["Payload"])["log"]
        for b in server.bodies("PostHostCommandUpdate")
    )
    assert "starting" in streamed
    assert "tracked as 42" in streamed
    status, payload = completion(server, "42")
    assert status == "Succeeded"
    assert payload["error_code"] == 0
    assert "tracked as 42" in payload["log"]
    assert CommandTracker(config.root_dir).interrupted(time.time()) == []
    assert all(r.signature_ok for r in server.requests)


def test_a_command_polled_acknowledged_runs_without_an_acknowledgement(tmp_path: Path) -> None:
    service = Service([])
    service.add("43", "ApplicationStart", spec_payload(), acknowledged=True)
    marker = tmp_path / "ran"
    server, _config = run_commands(
        tmp_path,
        service,
        lambda root: unpacked_revision(root, {"ApplicationStart": f"echo x >> {marker}\n"}),
    )
    [poll, *_] = server.bodies("PollHostCommand")
    assert poll["ShipyardAcknowledge"] is True
    assert server.bodies("PutHostCommandAcknowledgement") == []
    assert completion(server, "43")[0] == "Succeeded"
    assert marker.read_text() == "x\n"


def test_a_command_offered_again_after_its_result_was_lost_does_not_run_twice(
    tmp_path: Path,
) -> None:
    """The agent ran the command, its result never reached the server, and a later poll
    offers it again (acknowledged, so no acknowledgement would settle it): the tracking
    file says it ran, so it is reported failed rather than run a second time."""
    tracked: list[Path] = []

    class OfferedAgain(Service):
        def __call__(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            if operation == "PollHostCommand" and self.commands:
                # This agent process ran it before (its start-up recovery has passed).
                CommandTracker(tracked[0]).begin(DEPLOYMENT, "44")
            return super().__call__(operation, body)

    service = OfferedAgain([])
    service.add("44", "ApplicationStart", spec_payload(), acknowledged=True)
    marker = tmp_path / "ran"

    def prepare(root: Path) -> None:
        unpacked_revision(root, {"ApplicationStart": f"echo x >> {marker}\n"})
        tracked.append(root)

    server, config = run_commands(tmp_path, service, prepare)
    status, payload = completion(server, "44")
    assert status == "Failed"
    assert "could not be delivered" in payload["message"]
    assert not marker.exists()
    assert CommandTracker(config.root_dir).interrupted(time.time()) == []


def test_a_failing_script_is_reported_failed_with_its_code(tmp_path: Path) -> None:
    service = Service([])
    service.add("7", "ValidateService", spec_payload())
    server, _config = run_commands(
        tmp_path,
        service,
        lambda root: unpacked_revision(root, {"ValidateService": "echo broken >&2\nexit 3\n"}),
    )
    status, payload = completion(server, "7")
    assert status == "Failed"
    assert payload["error_code"] == 4
    assert payload["script_name"] == "scripts/ValidateService.sh"
    assert "broken" in payload["log"]


def test_a_settled_noop_is_completed_succeeded_without_running(tmp_path: Path) -> None:
    service = Service([], ack_status="Failed")
    service.add("8", "BeforeInstall", spec_payload())
    server, _config = run_commands(
        tmp_path, service, lambda root: unpacked_revision(root, {"AfterInstall": "exit 1\n"})
    )
    [ack] = server.bodies("PutHostCommandAcknowledgement")
    assert json.loads(ack["Diagnostics"]["Payload"]) == {"IsCommandNoop": True}
    status, payload = completion(server, "8")
    assert (status, payload["error_code"]) == ("Succeeded", 0)
    assert server.bodies("PostHostCommandUpdate") == []


def test_a_bad_specification_fails_the_command_with_unknown_error(tmp_path: Path) -> None:
    service = Service([])
    service.add("9", "Install", {**spec_payload(), "DeploymentGroupId": ""})
    server, _config = run_commands(tmp_path, service)
    status, payload = completion(server, "9")
    assert (status, payload["error_code"]) == ("Failed", 5)
    assert "DeploymentGroupId" in payload["message"]


def test_commands_of_different_groups_run_at_the_same_time(tmp_path: Path) -> None:
    # Each script announces itself and waits for the other; one at a time would time out.
    rendezvous = tmp_path / "rendezvous"
    rendezvous.mkdir()
    service = Service([])
    for n, group in ((1, "group-one"), (2, "group-two")):
        service.add(str(n), "ApplicationStart", spec_payload(f"d-CONCURRE{n}", group))

    def prepare(root: Path) -> None:
        for n, group, other in ((1, "group-one", 2), (2, "group-two", 1)):
            script = (
                f"touch {rendezvous}/{n}\n"
                f"i=0; while [ ! -e {rendezvous}/{other} ]; do\n"
                f"  i=$((i+1)); [ $i -gt 500 ] && exit 1; sleep 0.01\ndone\n"
            )
            unpacked_revision(root, {"ApplicationStart": script}, f"d-CONCURRE{n}", group)

    server, _config = run_commands(tmp_path, service, prepare)
    assert completion(server, "1")[0] == "Succeeded"
    assert completion(server, "2")[0] == "Succeeded"


def test_stopping_lets_a_running_command_finish_and_report(tmp_path: Path) -> None:
    started, gate = tmp_path / "started", tmp_path / "gate"
    service = Service([])
    service.add("21", "ApplicationStart", spec_payload())
    script = f"touch {started}\nwhile [ ! -e {gate} ]; do sleep 0.01; done\necho finished\n"
    with recording_server(service) as server:
        config = agent_config(server.url, tmp_path)
        unpacked_revision(config.root_dir, {"ApplicationStart": script})
        stop = threading.Event()
        agent = threading.Thread(target=run_agent, args=(config, stop))
        agent.start()
        wait_until(started.exists, "the hook to start")
        stop.set()
        agent.join(0.5)
        assert agent.is_alive()  # still waiting for the hook
        gate.touch()
        agent.join(10)
        assert not agent.is_alive()
    status, payload = completion(server, "21")
    assert status == "Succeeded"
    assert "finished" in payload["log"]


def test_poll_errors_are_logged_on_one_line_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service([])
    service.add("3", "AfterInstall", spec_payload())
    failures = [2]

    def flaky(operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation == "PollHostCommand" and failures[0]:
            failures[0] -= 1
            return 500, {"__type": "ServerException", "message": "database is locked"}
        return service(operation, body)

    with recording_server(flaky) as server:
        config = agent_config(server.url, tmp_path)
        unpacked_revision(config.root_dir, {"AfterInstall": "true\n"})
        with running_agent(config):
            assert service.completed.wait(10)
    warnings = [r for r in caplog.records if "database is locked" in r.getMessage()]
    assert len(warnings) == 2
    assert all(r.exc_info is None and "retrying in" in r.getMessage() for r in warnings)
    assert completion(server, "3")[0] == "Succeeded"


# ---- end to end: `python -m shipyard.agent` against the real server ----------------------


def register_agent(server: LiveServer, home: Path, name: str, tags: dict[str, str]) -> Path:
    """Register an instance with boto3, issue its keys, and write its agent config file."""
    arn = f"arn:aws:iam::000000000000:user/shipyard/{name}"
    codedeploy = server.client("codedeploy")
    codedeploy.register_on_premises_instance(instanceName=name, iamUserArn=arn)
    codedeploy.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags.items()]
    )
    with server.services.db.tx() as conn:
        key_id, secret = credentials.issue(
            conn, server.services.db.secret_box, "instance", name, time.time()
        )
    config = AgentConfig(
        endpoint=server.url,
        instance_name=name,
        access_key_id=key_id,
        secret_access_key=secret,
        host_identifier=arn,
        region=server.region,
        root_dir=home / "root",
        log_dir=home / "logs",
    )
    path = home / "agent.yml"
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(agent_config_to_yaml(config))
    return path


@contextmanager
def agent_processes() -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    """Start ``python -m shipyard.agent`` processes; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}

    def start(config_path: Path) -> subprocess.Popen[bytes]:
        output = (config_path.parent / "agent.out").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.agent", "--config", str(config_path)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
        output.close()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


# The server holds each poll this long. Short, because the server's own shutdown waits
# for held polls; long enough that an agent waiting one out on SIGTERM is caught.
E2E_POLL_SECONDS = 2.0


@pytest.fixture
def e2e_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path / "server", poll_seconds=E2E_POLL_SECONDS)


@pytest.mark.e2e
def test_the_agent_process_polls_and_exits_cleanly_on_sigterm(
    e2e_server: LiveServer, tmp_path: Path
) -> None:
    config_path = register_agent(e2e_server, tmp_path / "web-1", "web-1", {"role": "web"})
    with agent_processes() as start:
        agent = start(config_path)
        wait_until(lambda: last_seen(e2e_server, "web-1"), "the agent's first poll")
        # SIGTERM must break off the poll the server is holding, not wait it out.
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=E2E_POLL_SECONDS - 1) == 0
    output = (config_path.parent / "agent.out").read_text()
    assert "Traceback" not in output
    log = (config_path.parent / "logs" / "shipyard-agent.log").read_text()
    assert "agent started: instance web-1" in log
    assert "agent stopped" in log


def tar_bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deploy(server: LiveServer, bundle: bytes) -> str:
    """Application ``shop``, group ``web`` (instances tagged role=web), one deployment."""
    s3 = server.client("s3")
    s3.create_bucket(Bucket="bundles")
    etag = s3.put_object(Bucket="bundles", Key="shop/v1.tar", Body=bundle)["ETag"].strip('"')
    codedeploy = server.client("codedeploy")
    codedeploy.create_application(applicationName="shop")
    codedeploy.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    location = {"bucket": "bundles", "key": "shop/v1.tar", "bundleType": "tar", "eTag": etag}
    created = codedeploy.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision={"revisionType": "S3", "s3Location": location},
    )
    return str(created["deploymentId"])


@pytest.mark.e2e
def test_a_killed_agent_reports_the_interrupted_hook_when_it_restarts(
    e2e_server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "web-1"
    config_path = register_agent(e2e_server, home, "web-1", {"role": "web"})
    pid_file = tmp_path / "hook.pid"
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n"
        "  ApplicationStart:\n    - location: start.sh\n      timeout: 60\n"
    )
    start_script = (
        f"#!/bin/sh\necho $$ > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\nexec sleep 60\n"
    )
    deployment_id = deploy(
        e2e_server, tar_bundle({"appspec.yml": appspec, "start.sh": start_script})
    )
    codedeploy = e2e_server.client("codedeploy")
    with agent_processes() as start:
        first = start(config_path)
        hook_pid = int(
            wait_until(lambda: pid_file.read_text() if pid_file.exists() else None, "the hook")
        )
        first.kill()  # SIGKILL: no chance to report anything
        first.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(hook_pid, signal.SIGKILL)  # the orphaned hook script
        tracking = home / "root" / "ongoing-deployment" / deployment_id
        assert tracking.exists()

        restarted = start(config_path)

        def finished() -> dict[str, Any] | None:
            info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None

        info = wait_until(finished, "the deployment to end")
        assert not tracking.exists()
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=E2E_POLL_SECONDS - 1) == 0
    assert info["status"] == "Failed"
    target = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId="web-1")
    events = {
        e["lifecycleEventName"]: e
        for e in target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]
    }
    assert events["ApplicationStart"]["status"] == "Failed"
    assert events["ApplicationStart"]["diagnostics"]["message"] == RESTARTED_MESSAGE
