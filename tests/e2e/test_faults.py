"""Faults on a host, with real agents: an agent killed mid-script or gone silent, a
full disk during the download, a bundle deleted from the store under a deployment,
a hook whose background child holds its output, a hook that ignores SIGTERM. Each
ends as a clear failure with the right error code, never as a hang.

Hooks that must be caught mid-run wait at a gate (a file the test creates) instead
of sleeping for a guessed time, so the tests are as quick as the machine allows.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from shipyard.demo.fleet import LocalHost
from shipyard.store import schema
from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    Uploader,
    fleet_on_server,
    make_bundle,
    make_uploader,
    signal_agent,
)
from tests.e2e.test_failures import bundle_with_hook, event_of
from tests.e2e.test_in_place import deploy, setup_group
from tests.support import wait_until

STARTED = SHARED_ROOT / "hook.started"  # the gated hook writes its pid here
RELEASE = SHARED_ROOT / "release"  # the gated hook finishes once this exists
# Waits at the gate for at most 20 s, so an orphaned copy never lingers long.
GATED_HOOK = f"""#!/bin/sh
echo $$ > {STARTED}
i=0
while [ ! -e {RELEASE} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
"""


def gated_bundle(event: str) -> bytes:
    return bundle_with_hook(event, GATED_HOOK)


def release(fleet: Fleet) -> None:
    for host in fleet.hosts:
        host.view(RELEASE).touch()


def start_deployment(fleet: Fleet, revision: dict[str, Any], **extra: Any) -> str:
    return str(
        fleet.cd.create_deployment(
            applicationName="shop", deploymentGroupName="web", revision=revision, **extra
        )["deploymentId"]
    )


def first_started(fleet: Fleet) -> str:
    """The name of the first host whose gated hook is running."""
    return str(
        wait_until(
            lambda: next((h.name for h in fleet.hosts if h.view(STARTED).exists()), None),
            "a gated hook to start",
        )
    )


def process_gone(pid: int) -> bool:
    """Dead, or a zombie waiting to be reaped (it holds nothing any more)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


# ---- an agent killed mid-script ------------------------------------------------------------


def kill_and_restart_mid_script(fleet: Fleet) -> LocalHost:
    """kill -9 the agent of the first host whose gated hook runs, start it again, and
    open the gates; returns that host."""
    victim = fleet.host(first_started(fleet))
    signal_agent(victim, signal.SIGKILL)
    assert victim.process is not None
    victim.process.wait(10)
    victim.start()  # crash recovery reports the interrupted command
    release(fleet)
    return victim


@pytest.mark.parametrize(
    ("config", "hosts", "status", "error_code"),
    [
        # One failed host of three: AllAtOnce only needs one healthy host.
        ("CodeDeployDefault.AllAtOnce", ["web-1", "web-2", "web-3"], "Succeeded", None),
        # The first host of two fails: OneAtATime fails the deployment at once.
        ("CodeDeployDefault.OneAtATime", ["web-1", "web-2"], "Failed", "HEALTH_CONSTRAINTS"),
    ],
)
def test_agent_killed_mid_script_reports_the_event_failed_when_back(
    fleet: Fleet,
    upload: Uploader,
    config: str,
    hosts: list[str],
    status: str,
    error_code: str | None,
) -> None:
    setup_group(fleet, hosts, config)
    deployment_id = start_deployment(fleet, upload("gated.zip", gated_bundle("BeforeInstall")))
    victim = kill_and_restart_mid_script(fleet)

    info = fleet.wait(deployment_id, timeout=30)
    assert info["status"] == status, info
    assert info.get("errorInformation", {}).get("code") == error_code
    target = fleet.targets(deployment_id)[victim.name]
    assert target["status"] == "Failed"
    event = event_of(target, "BeforeInstall")
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "UnknownError"  # the agent's code 7
    assert "agent restarted while the command was running" in event["diagnostics"]["message"]
    assert event_of(target, "Install")["status"] == "Skipped"
    others = [t for name, t in fleet.targets(deployment_id).items() if name != victim.name]
    expected_others = "Succeeded" if status == "Succeeded" else "Skipped"
    assert [t["status"] for t in others] == [expected_others] * len(others)


def test_agent_restarted_after_a_kill_takes_new_work_at_once(
    fleet: Fleet, upload: Uploader
) -> None:
    """The poll the dead process left open on the server must not swallow the host's
    next command (which would then wait for the 30 s re-offer)."""
    setup_group(fleet, ["web-1"])
    first = start_deployment(fleet, upload("gated.zip", gated_bundle("BeforeInstall")))
    kill_and_restart_mid_script(fleet)
    assert fleet.wait(first, timeout=30)["status"] == "Failed"
    noop = bundle_with_hook("BeforeInstall", "#!/bin/sh\n")
    after = start_deployment(fleet, upload("next.zip", noop))
    assert fleet.wait(after, timeout=15)["status"] == "Succeeded"


# ---- an agent that goes silent -------------------------------------------------------------

AGENT_TIMEOUT = 3.0
SERVER_POLL = 2.0  # a poll held open counts as contact, so silence shows after it ends
SWEEP = 1.0  # the runner checks for silent agents once a second


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, agent_timeout=AGENT_TIMEOUT, poll_seconds=SERVER_POLL)


def test_silent_agent_is_noticed_by_heartbeat(quick_fleet: Fleet) -> None:
    fleet = quick_fleet
    upload = make_uploader(fleet.server)
    setup_group(fleet, ["web-1", "web-2"], "CodeDeployDefault.AllAtOnce")
    deployment_id = start_deployment(fleet, upload("gated.zip", gated_bundle("BeforeInstall")))
    silent = fleet.host("web-2")
    wait_until(lambda: silent.view(STARTED).exists(), "BeforeInstall to start on web-2")
    signal_agent(silent, signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        release(fleet)
        wait_until(
            lambda: fleet.targets(deployment_id)["web-2"]["status"] == "Failed",
            "web-2 to be failed for silence",
            timeout=AGENT_TIMEOUT + SERVER_POLL + 10,
        )
        noticed_after = time.monotonic() - stopped_at
        info = fleet.wait(deployment_id, timeout=30)
    finally:
        signal_agent(silent, signal.SIGCONT)
    assert noticed_after < AGENT_TIMEOUT + SERVER_POLL + SWEEP + 1.5, noticed_after
    assert info["status"] == "Succeeded", info  # AllAtOnce: web-1 suffices
    event = event_of(fleet.targets(deployment_id)["web-2"], "BeforeInstall")
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "UnknownError"
    assert "has not been heard from" in event["diagnostics"]["message"]

    # Awake again, the agent's late result changes nothing, and it works as before.
    for host in fleet.hosts:
        host.view(STARTED).unlink(missing_ok=True)
    after = deploy(fleet, upload("fine.zip", bundle_with_hook("BeforeInstall", "#!/bin/sh\n")))
    assert after["status"] == "Succeeded", after
    assert after["deploymentOverview"]["Succeeded"] == 2
    assert fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"] == info


REOFFER = 2.0


@pytest.fixture
def reoffer_fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path, reoffer_seconds=REOFFER)


def test_agent_paused_before_acknowledging_runs_the_command_once(reoffer_fleet: Fleet) -> None:
    """The agent stalls (a paused VM, a swap storm) after its poll was answered and
    before it acknowledged: the server offers the command again, and the agent, awake,
    holds it twice. It must still run once."""
    fleet = reoffer_fleet
    upload = make_uploader(fleet.server)
    setup_group(fleet, ["web-1"])
    log = SHARED_ROOT / "events.log"
    record = f'#!/bin/sh\necho "$LIFECYCLE_EVENT" >> {log}\n'
    files: dict[str, str | bytes] = {"scripts/record.sh": record}
    spec = "version: 0.0\nos: linux\nhooks:\n"
    for event in ("ApplicationStop", "BeforeInstall", "ValidateService"):
        spec += f"  {event}:\n    - location: scripts/record.sh\n"
    revision = upload("record.zip", make_bundle({**files, "appspec.yml": spec}))
    assert deploy(fleet, revision)["status"] == "Succeeded"  # a revision to stop
    host = fleet.host("web-1")
    host.view(log).unlink()

    signal_agent(host, signal.SIGSTOP)  # while its poll is open on the server
    try:
        deployment_id = start_deployment(fleet, revision)
        commands = schema.host_commands.c
        # A connection of the test's own: the server's SQLite connection is its event
        # loop's, and a commit from this thread while it runs a statement would fail.
        reader = create_engine(fleet.server.services.db.engine.url)

        def claimed() -> float | None:
            with reader.connect() as conn:
                found: float | None = conn.execute(
                    select(commands.claimed).where(
                        commands.deployment_id == deployment_id, commands.claimed.is_not(None)
                    )
                ).scalar()
            return found

        try:
            handed_out = wait_until(claimed, "the first command to be handed to the poll")
        finally:
            reader.dispose()
        # The stall is the scenario: it lasts until the command is due to be re-offered.
        time.sleep(max(0.0, handed_out + REOFFER + 0.5 - time.time()))
    finally:
        signal_agent(host, signal.SIGCONT)
    info = fleet.wait(deployment_id, timeout=30)
    assert info["status"] == "Succeeded", info
    ran = host.view(log).read_text().splitlines()
    assert ran == ["ApplicationStop", "BeforeInstall", "ValidateService"]


# ---- a full disk during the download -------------------------------------------------------


@pytest.fixture
def mount_tmpfs(fleet: Fleet) -> Iterator[Callable[[Path, str], None]]:
    """Mount a small tmpfs somewhere (before the host's agent starts: it then sees it in
    its own mount namespace too); the agents are stopped before it is unmounted."""
    mounted: list[Path] = []

    def mount(where: Path, size: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True
        )
        mounted.append(where)

    try:
        yield mount
    finally:
        for host in fleet.hosts:
            host.stop()
        for where in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(where)], check=False)


def incompressible_bundle(size: int) -> bytes:
    """A zip whose payload is ``size`` random bytes, stored as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
        archive.writestr("site/blob.bin", os.urandom(size))
    return buffer.getvalue()


def test_full_disk_during_download_fails_clearly(
    fleet: Fleet, upload: Uploader, mount_tmpfs: Callable[[Path, str], None]
) -> None:
    fleet.add_hosts(["web-1"], {"role": "web"}, start=False)
    host = fleet.host("web-1")
    mount_tmpfs(host.home / "deployment-root", "1m")
    host.start()
    setup_group(fleet, [])  # the application and group; web-1 is in it by its tag

    big = deploy(fleet, upload("big.zip", incompressible_bundle(4 * 1024 * 1024)))
    assert big["status"] == "Failed", big
    event = event_of(fleet.targets(big["deploymentId"])["web-1"], "DownloadBundle")
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "UnknownError"
    assert "No space left on device" in event["diagnostics"]["message"]

    # The partial download was removed: a small revision fits on the same disk.
    small = deploy(fleet, upload("small.zip", bundle_with_hook("BeforeInstall", "#!/bin/sh\n")))
    assert small["status"] == "Succeeded", small


# ---- a bundle deleted from the store under a deployment ------------------------------------


def test_bundle_deleted_before_download_fails_clearly(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    # v1's ApplicationStop runs (and waits at the gate) when v2 is deployed.
    first = deploy(fleet, upload("v1.zip", gated_bundle("ApplicationStop")))
    assert first["status"] == "Succeeded", first
    revision = upload("v2.zip", make_bundle({"appspec.yml": "version: 0.0\nos: linux\n"}))
    deployment_id = start_deployment(fleet, revision)
    host = fleet.host("web-1")
    try:
        wait_until(lambda: host.view(STARTED).exists(), "ApplicationStop to start")
        location = revision["s3Location"]
        fleet.server.client("s3").delete_object(Bucket=location["bucket"], Key=location["key"])
    finally:
        release(fleet)
    info = fleet.wait(deployment_id, timeout=30)
    assert info["status"] == "Failed", info
    target = fleet.targets(deployment_id)["web-1"]
    assert event_of(target, "ApplicationStop")["status"] == "Succeeded"
    event = event_of(target, "DownloadBundle")
    assert event["status"] == "Failed"
    assert event["diagnostics"]["errorCode"] == "UnknownError"
    message = event["diagnostics"]["message"]
    assert "not found" in message and "HTTP 404" in message, message


# ---- hooks that misbehave around their end -------------------------------------------------


def test_background_child_holding_stdout_fails_at_the_deadline(
    fleet: Fleet, upload: Uploader
) -> None:
    setup_group(fleet, ["web-1"])
    script = f"#!/bin/sh\nsleep 100 &\necho $! > {SHARED_ROOT}/child.pid\necho started\nexit 0\n"
    started = time.monotonic()
    info = deploy(fleet, upload("daemon.zip", bundle_with_hook("AfterInstall", script, timeout=2)))
    took = time.monotonic() - started
    assert info["status"] == "Failed", info
    diagnostics = event_of(fleet.targets(info["deploymentId"])["web-1"], "AfterInstall")[
        "diagnostics"
    ]
    assert diagnostics["errorCode"] == "ScriptFailed"  # the agent's code 6
    assert "failed to close STDOUT" in diagnostics["message"]
    assert "[stdout]started" in diagnostics["logTail"]
    assert took < 2 + 5, took  # the 2 s deadline, then SIGTERM ends the child at once
    child = int(fleet.host("web-1").view(SHARED_ROOT / "child.pid").read_text())
    assert process_gone(child)


def test_hook_ignoring_sigterm_is_killed_after_its_timeout(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    script = f"#!/bin/sh\ntrap '' TERM\necho $$ > {SHARED_ROOT}/script.pid\nsleep 100\n"
    info = deploy(
        fleet, upload("stubborn.zip", bundle_with_hook("AfterInstall", script, timeout=1))
    )
    assert info["status"] == "Failed", info
    diagnostics = event_of(fleet.targets(info["deploymentId"])["web-1"], "AfterInstall")[
        "diagnostics"
    ]
    assert diagnostics["errorCode"] == "ScriptTimedOut"
    assert "failed to complete in 1 seconds" in diagnostics["message"]
    script_pid = int(fleet.host("web-1").view(SHARED_ROOT / "script.pid").read_text())
    assert process_gone(script_pid)
