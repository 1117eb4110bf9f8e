"""The server killed (kill -9) again and again during a deployment, on SQLite and on
PostgreSQL: after each restart the deployment carries on from where it was, and in
the end every host has run every lifecycle event exactly once.

The server runs as a real ``python -m shipyard server`` process, restarted on the same
port and data directory; the agents are real processes that simply reconnect. Kill
moments are chosen from what the hosts are doing (the lines their hooks write), some
of them at a seeded random point, so a failure can be replayed.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from shipyard.demo.fleet import can_isolate, stop_all
from tests.conftest import free_port, on_both_databases, service_missing
from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    Uploader,
    commands_run,
    make_bundle,
    make_uploader,
)
from tests.e2e.test_in_place import EVENTS, HOOKS
from tests.support import wait_until

SERVER_POLL_SECONDS = 2
# A poll answer lost in a crash is offered again after this; an agent still retrying
# its acknowledgement through a restart when that happens must not run it twice.
REOFFER_SECONDS = 5
HOOK_SECONDS = 0.3
EVENTS_FILE = SHARED_ROOT / "events.log"
RECORD = f"""#!/bin/sh
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> {EVENTS_FILE}
sleep {HOOK_SECONDS}
"""


class ServerProcess:
    """``python -m shipyard server`` in a process group of its own, that can be killed
    and started again on the same port and data directory.

    It has what ``Fleet`` and the e2e helpers use of a ``LiveServer`` (url, keys,
    region, ``client()``), so a ``Fleet`` can run on it.
    """

    region = "us-east-1"

    def __init__(
        self,
        data_dir: Path,
        database: str,
        flags: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database = database
        self.flags = flags  # more ``shipyard server`` flags, e.g. ("--config", FILE)
        self.env = dict(env or {})  # more environment for every start
        # More SHIPYARD_* settings, without the prefix (e.g. {"AGENT_TIMEOUT": "10"}).
        self.settings = settings or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / "server.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.access_key_id = ""
        self.secret_access_key = ""

    def start(self) -> None:
        command = [sys.executable, "-m", "shipyard", "server"]
        command += ["--data-dir", str(self.data_dir), "--port", str(self.port)]
        if self.database:
            command += ["--database", self.database]
        command += self.flags
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        env.update(
            SHIPYARD_POLL_SECONDS=str(SERVER_POLL_SECONDS),
            SHIPYARD_REOFFER_SECONDS=str(REOFFER_SECONDS),
        )
        env.update(self.env)
        env.update({f"SHIPYARD_{name}": value for name, value in self.settings.items()})
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        wait_until(self._ready, f"the server to listen on port {self.port}", timeout=30)
        keys = configparser.ConfigParser()
        keys.read(self.data_dir / "credentials")
        self.access_key_id = keys["default"]["aws_access_key_id"]
        self.secret_access_key = keys["default"]["aws_secret_access_key"]

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the server exited: {self.output()}")
        if not (self.data_dir / "credentials").exists():
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """kill -9, whatever the server is doing."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def client(self, service: str = "codedeploy") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=BotoConfig(retries={"max_attempts": 0}, s3={"addressing_style": "path"}),
        )


@pytest.fixture
def crash_fleet(tmp_path: Path, database: str) -> Iterator[Fleet]:
    """Three hosts with real agents, on a server process the test may kill."""
    if not can_isolate():
        service_missing("private mount namespaces (unshare --mount) for per-host filesystem views")
    server = ServerProcess(tmp_path / "server", database)
    fleet = Fleet(server, tmp_path / "hosts", isolate=True)  # type: ignore[arg-type]
    try:
        server.start()
        fleet.add_hosts(["web-1", "web-2", "web-3"], {"role": "web"})
        yield fleet
    finally:
        stop_all(fleet.hosts)
        server.stop()


def recording_bundle(version: str) -> bytes:
    """Every hook appends "<event> <deployment id>" to the host's events file."""
    hooks = "".join(
        f"  {event}:\n    - location: scripts/record.sh\n      timeout: 60\n" for event in HOOKS
    )
    appspec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/www\nhooks:\n{hooks}"
    )
    return make_bundle(
        {"appspec.yml": appspec, "site/version.txt": version, "scripts/record.sh": RECORD}
    )


def hook_lines(fleet: Fleet, deployment_id: str) -> dict[str, list[str]]:
    """Per host, the events its hooks recorded for ``deployment_id``, in order."""
    found = {}
    for host in fleet.hosts:
        path = host.view(EVENTS_FILE)
        lines = path.read_text().splitlines() if path.exists() else []
        found[host.name] = [line.split()[0] for line in lines if line.endswith(deployment_id)]
    return found


def started_hooks(fleet: Fleet, deployment_id: str) -> int:
    return sum(len(lines) for lines in hook_lines(fleet, deployment_id).values())


KillPoint = tuple[str, Callable[[], bool], float]  # what, reached yet?, then wait this long


def kill_points(fleet: Fleet, deployment_id: str, rng: random.Random) -> list[KillPoint]:
    """When to kill the server: two fixed moments, then two seeded random ones.

    Five hooks per host, one host at a time: 15 hook starts in all; the second host
    starts its second hook (BeforeInstall) at start number 7."""

    def first_host_finished() -> bool:
        targets = fleet.targets(deployment_id)
        return any(t["status"] == "Succeeded" for t in targets.values())

    def hooks_started(count: int) -> Callable[[], bool]:
        return lambda: started_hooks(fleet, deployment_id) >= count

    points: list[KillPoint] = [
        ("after the first host finished", first_host_finished, 0.0),
        ("while a hook runs on the second host", hooks_started(7), 0.0),
    ]
    for count in sorted(rng.sample(range(8, 15), 2)):
        pause = rng.uniform(0, HOOK_SECONDS + 0.2)  # inside that hook or just after it
        points.append((f"{pause:.2f} s after hook start {count}", hooks_started(count), pause))
    return points


def create_group_with_first_revision(fleet: Fleet, upload: Uploader) -> None:
    """The group (OneAtATime), with a first revision already on every host, so the
    deployment under test runs ApplicationStop too."""
    cd = fleet.cd
    cd.create_application(applicationName="shop")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    first = cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision=upload("v1.zip", recording_bundle("v1")),
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
    )["deploymentId"]
    assert fleet.wait(first)["status"] == "Succeeded"


@on_both_databases
def test_deployment_survives_repeated_server_kills(crash_fleet: Fleet) -> None:
    fleet = crash_fleet
    server: ServerProcess = fleet.server  # type: ignore[assignment]
    upload = make_uploader(fleet.server)  # type: ignore[arg-type]
    create_group_with_first_revision(fleet, upload)
    deployment_id = fleet.cd.create_deployment(
        applicationName="shop",
        deploymentGroupName="web",
        revision=upload("v2.zip", recording_bundle("v2")),
    )["deploymentId"]
    rng = random.Random("server-crash-" + ("postgres" if server.database else "sqlite"))
    kills: list[str] = []  # what the hosts had started at each kill

    def story() -> str:
        agents = {h.name: (h.home / "agent.out").read_text()[-3000:] for h in fleet.hosts}
        return f"kills: {kills}\nagents: {agents}\nserver: {server.output()}"

    for what, reached, pause in kill_points(fleet, deployment_id, rng):
        try:
            wait_until(reached, f"the moment to kill the server: {what}", timeout=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{story()}") from None
        time.sleep(pause)  # lands the kill somewhere inside or after that hook
        server.kill()
        kills.append(f"{what}: {hook_lines(fleet, deployment_id)}")
        server.start()

    info = fleet.wait(deployment_id, timeout=90)
    assert info["status"] == "Succeeded", (info, story())
    assert info["deploymentOverview"]["Succeeded"] == 3

    # Every hook ran exactly once per host, in order ...
    assert hook_lines(fleet, deployment_id) == {h.name: HOOKS for h in fleet.hosts}, story()
    # ... and so did every command, DownloadBundle and Install included.
    assert commands_run(fleet, deployment_id) == {h.name: EVENTS for h in fleet.hosts}, story()
    # The API says the same.
    for name, target in fleet.targets(deployment_id).items():
        assert target["status"] == "Succeeded", (name, target)
        events = target["lifecycleEvents"]
        assert [e["lifecycleEventName"] for e in events] == EVENTS
        assert [e["status"] for e in events] == ["Succeeded"] * len(EVENTS), (name, events)
        starts = [e["startTime"] for e in events]
        assert starts == sorted(starts)
    versions = [h.view(SHARED_ROOT / "www" / "version.txt").read_text() for h in fleet.hosts]
    assert versions == ["v2"] * 3
