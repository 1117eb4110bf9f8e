"""Deployments that go wrong: failing, timing-out and missing scripts, existing
files, escaping archives, a second deployment while one is active."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import on_both_databases
from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, make_bundle
from tests.e2e.test_in_place import deploy, setup_group


def bundle_with_hook(event: str, script: str | None, timeout: int = 30) -> bytes:
    files: dict[str, str | bytes] = {
        "appspec.yml": (
            "version: 0.0\nos: linux\nfiles:\n"
            f"  - source: site\n    destination: {SHARED_ROOT}/www\n"
            f"hooks:\n  {event}:\n    - location: scripts/hook.sh\n      timeout: {timeout}\n"
        ),
        "site/index.html": "hello",
    }
    if script is not None:
        files["scripts/hook.sh"] = script
    return make_bundle(files)


def event_of(target: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == name)


@on_both_databases
def test_failing_script_fails_host_and_deployment(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1", "web-2"])
    script = "#!/bin/sh\necho about to fail\necho broken config >&2\nexit 3\n"
    info = deploy(fleet, upload("bad.zip", bundle_with_hook("AfterInstall", script)))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HEALTH_CONSTRAINTS"
    assert info["deploymentOverview"]["Failed"] == 1
    assert info["deploymentOverview"]["Skipped"] == 1
    targets = fleet.targets(info["deploymentId"])
    failed = targets["web-1"]  # one at a time, in name order: the first host fails
    assert failed["status"] == "Failed"
    assert targets["web-2"]["status"] == "Skipped"
    event = event_of(failed, "AfterInstall")
    assert event["status"] == "Failed"
    diagnostics = event["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed"
    assert diagnostics["scriptName"] == "scripts/hook.sh"
    assert "exit code 3" in diagnostics["message"]
    assert "[stderr]broken config" in diagnostics["logTail"]
    assert event_of(failed, "ApplicationStart")["status"] == "Skipped"
    group = fleet.cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    assert group["deploymentGroupInfo"]["lastAttemptedDeployment"]["status"] == "Failed"
    assert "lastSuccessfulDeployment" not in group["deploymentGroupInfo"]


def test_timing_out_script_is_killed_and_reported(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    script = f"#!/bin/sh\nsleep 600 &\necho $! > {SHARED_ROOT}/child.pid\nsleep 600\n"
    info = deploy(fleet, upload("slow.zip", bundle_with_hook("BeforeInstall", script, timeout=1)))
    assert info["status"] == "Failed"
    target = fleet.targets(info["deploymentId"])["web-1"]
    diagnostics = event_of(target, "BeforeInstall")["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptTimedOut"
    assert "1 seconds" in diagnostics["message"]
    child = int(fleet.host("web-1").view(SHARED_ROOT / "child.pid").read_text())
    # The background child died with the script's process group (gone, or a zombie
    # waiting for init to reap it).
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_a_missing_script_fails_install_as_push_would_refuse_it(
    fleet: Fleet, upload: Uploader
) -> None:
    """A bundle made without ``shipyard push`` meets the same rules on the host: the
    missing script is named at Install, before anything of the revision runs."""
    setup_group(fleet, ["web-1"])
    info = deploy(fleet, upload("missing.zip", bundle_with_hook("ApplicationStart", None)))
    assert info["status"] == "Failed"
    target = fleet.targets(info["deploymentId"])["web-1"]
    message = event_of(target, "Install")["diagnostics"]["message"]
    assert "appspec.yml: hook script 'scripts/hook.sh' is not in the bundle" in message
    assert event_of(target, "ApplicationStart")["status"] != "Succeeded"


@pytest.mark.parametrize(
    ("option", "appspec_value", "expected_status", "expected_content"),
    [
        ("DISALLOW", None, "Failed", "left by hand"),
        ("OVERWRITE", None, "Succeeded", "hello"),
        ("RETAIN", None, "Succeeded", "left by hand"),
        ("DISALLOW", "OVERWRITE", "Succeeded", "hello"),  # the appspec wins
        ("OVERWRITE", "RETAIN", "Succeeded", "left by hand"),
    ],
)
def test_file_exists_behavior(
    fleet: Fleet,
    upload: Uploader,
    option: str,
    appspec_value: str | None,
    expected_status: str,
    expected_content: str,
) -> None:
    setup_group(fleet, ["web-1"])
    page = fleet.host("web-1").view(SHARED_ROOT / "www" / "index.html")
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("left by hand")
    line = f"file_exists_behavior: {appspec_value}\n" if appspec_value else ""
    bundle = make_bundle(
        {
            "appspec.yml": (
                f"version: 0.0\nos: linux\n{line}files:\n"
                f"  - source: site\n    destination: {SHARED_ROOT}/www\n"
            ),
            "site/index.html": "hello",
        }
    )
    info = deploy(fleet, upload("fe.zip", bundle), fileExistsBehavior=option)
    assert info["status"] == expected_status
    assert info["fileExistsBehavior"] == option
    assert page.read_text() == expected_content
    if expected_status == "Failed":
        target = fleet.targets(info["deploymentId"])["web-1"]
        message = event_of(target, "Install")["diagnostics"]["message"]
        assert "already exists at this location" in message


def test_archive_escaping_its_directory_fails_clearly(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    bundle = make_bundle(
        {
            "appspec.yml": "version: 0.0\nos: linux\n",
            "../../escaped.txt": "gotcha",
        }
    )
    info = deploy(fleet, upload("evil.zip", bundle))
    assert info["status"] == "Failed"
    target = fleet.targets(info["deploymentId"])["web-1"]
    event = event_of(target, "DownloadBundle")
    assert event["status"] == "Failed"
    assert "escaped.txt" in event["diagnostics"]["message"]
    root = fleet.host("web-1").home / "deployment-root"
    assert not any(p.name == "escaped.txt" for p in root.parent.rglob("escaped.txt"))


def test_only_one_active_deployment_per_group(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    script = "#!/bin/sh\nsleep 2\n"
    revision = upload("slow.zip", bundle_with_hook("BeforeInstall", script))
    cd = fleet.cd
    first = cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision
    )
    with pytest.raises(ClientError) as info:
        cd.create_deployment(applicationName="shop", deploymentGroupName="web", revision=revision)
    assert info.value.response["Error"]["Code"] == "DeploymentLimitExceededException"
    assert first["deploymentId"] in info.value.response["Error"]["Message"]
    assert fleet.wait(first["deploymentId"])["status"] == "Succeeded"


def test_corrupt_bundle_fails_download(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    info = deploy(fleet, upload("corrupt.zip", b"PK\x03\x04 this is not a zip archive"))
    assert info["status"] == "Failed"
    target = fleet.targets(info["deploymentId"])["web-1"]
    assert event_of(target, "DownloadBundle")["status"] == "Failed"
