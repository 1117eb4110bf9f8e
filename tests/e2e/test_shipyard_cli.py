"""The ``shipyard`` command line end to end, as a subprocess against a live fleet:
push, deploy (following it to the end), status and logs."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader
from tests.e2e.test_failures import bundle_with_hook
from tests.e2e.test_in_place import HOOKS, app_bundle, setup_group

SHIPYARD = Path(sys.executable).parent / "shipyard"
CREATED = re.compile(r"^Created deployment (d-[A-Z0-9]+);", re.MULTILINE)


def shipyard(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(fleet.server.data_dir / "credentials"),
        AWS_CONFIG_FILE="/nonexistent",
        SHIPYARD_ENDPOINT=fleet.server.url,
    )
    return subprocess.run(
        [str(SHIPYARD), *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def source_tree(root: Path, bundle: bytes) -> Path:
    """The files of ``bundle`` as a directory (modes included), for ``shipyard push``."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        for info in archive.infolist():
            path = root / info.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(info))
            path.chmod((info.external_attr >> 16) & 0o777)
    return root


def deployment_id_of(output: str) -> str:
    found = CREATED.search(output)
    assert found, output
    return found.group(1)


def host_row(output: str, host: str) -> list[str]:
    """The per-host table's row of ``host``: HOST STATUS EVENTS DURATION [EVENT DETAIL...]."""
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["HOST", "STATUS"])
    table = lines[header + 1 : lines.index("", header)] if "" in lines[header:] else lines[header:]
    rows = [line.split() for line in table if line.split()[0] == host]
    assert len(rows) == 1, output
    return rows[0]


def test_push_deploy_status_and_logs(fleet: Fleet, tmp_path: Path) -> None:
    hosts = ["web-1", "web-2"]
    setup_group(fleet, hosts, "CodeDeployDefault.AllAtOnce")
    source = source_tree(tmp_path / "app", app_bundle("v1"))

    pushed = shipyard(fleet, "push", "--application", "shop", "--source", str(source))
    assert pushed.returncode == 2, pushed  # --bucket is required
    assert "--bucket" in pushed.stderr
    pushed = shipyard(
        fleet, "push", "--application", "shop", "--source", str(source), "--bucket", "releases"
    )
    assert pushed.returncode == 0, pushed.stderr
    hint = pushed.stdout.split("Deploy it with:", 1)[1].strip()
    command = shlex.split(hint)
    assert command[:2] == ["shipyard", "deploy"]
    registered = fleet.cd.list_application_revisions(applicationName="shop")["revisions"]
    assert [r["s3Location"]["bucket"] for r in registered] == ["releases"]

    assert command[command.index("--group") + 1] == "web"  # the application's one group
    deployed = shipyard(fleet, *command[1:], "--description", "from the shipyard cli")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    deployment_id = deployment_id_of(deployed.stdout)
    assert f"Deployment {deployment_id} Succeeded" in deployed.stdout
    for name in hosts:
        assert host_row(deployed.stdout, name)[1:3] == ["Succeeded", "7/7"]
        assert fleet.host(name).view(SHARED_ROOT / "www" / "index.html").read_text() == (
            "<h1>v1</h1>"
        )
    info = fleet.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["status"] == "Succeeded"
    assert info["description"] == "from the shipyard cli"
    assert info["revision"] == registered[0]

    status = shipyard(fleet, "status", deployment_id)
    assert status.returncode == 0, status.stderr
    summary = dict(line.split(None, 1) for line in status.stdout.splitlines()[:5])
    assert summary["Deployment"] == deployment_id
    assert summary["Application"] == "shop"
    assert summary["Group"] == "web"
    assert summary["Status"] == "Succeeded"
    assert "Description  from the shipyard cli" in status.stdout
    for name in hosts:
        assert host_row(status.stdout, name)[1:3] == ["Succeeded", "7/7"]

    logs = shipyard(fleet, "logs", deployment_id, "--target", "web-2")
    assert logs.returncode == 0, logs.stderr
    headers = [line for line in logs.stdout.splitlines() if line.startswith("==> ")]
    # Only events that ran scripts have output (ApplicationStop had no earlier revision).
    assert headers == [f"==> web-2 {event} <==" for event in HOOKS[1:]]
    assert "[stdout]running BeforeInstall" in logs.stdout
    assert "[stderr]a warning for ValidateService" in logs.stdout
    assert "web-1" not in logs.stdout

    one = shipyard(fleet, "logs", deployment_id, "--target", "web-1", "--event", "AfterInstall")
    assert one.returncode == 0, one.stderr
    assert "==>" not in one.stdout
    assert "[stdout]running AfterInstall" in one.stdout
    assert "running BeforeInstall" not in one.stdout


def test_failing_deployment_exits_1_and_names_the_failure(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["web-1"])
    script = "#!/bin/sh\necho checking config\necho config is broken >&2\nexit 3\n"
    revision = upload("shop/bad.zip", bundle_with_hook("AfterInstall", script))
    location = revision["s3Location"]
    deployed = shipyard(
        fleet,
        *("deploy", "--application", "shop", "--group", "web"),
        *("--bucket", location["bucket"], "--key", location["key"], "--etag", location["eTag"]),
    )
    assert deployed.returncode == 1, deployed.stdout + deployed.stderr
    deployment_id = deployment_id_of(deployed.stdout)
    out = deployed.stdout
    assert f"Deployment {deployment_id} Failed" in out
    assert "HEALTH_CONSTRAINTS" in out
    row = host_row(out, "web-1")
    assert row[1] == "Failed"
    assert row[4:6] == ["AfterInstall", "ScriptFailed:"]
    assert (
        "web-1 failed in AfterInstall: ScriptFailed: Script at specified location: "
        "scripts/hook.sh failed with exit code 3"
    ) in out
    assert "[stderr]config is broken" in out
    suggested = f"shipyard logs {deployment_id} --target web-1 --event AfterInstall"
    assert suggested in out

    status = shipyard(fleet, "status", deployment_id)
    assert status.returncode == 1, status.stderr  # the status of a failed deployment
    assert "Failed (HEALTH_CONSTRAINTS:" in status.stdout
    assert "scripts/hook.sh failed with exit code 3" in status.stdout

    logs = shipyard(fleet, *shlex.split(suggested)[1:])
    assert logs.returncode == 0, logs.stderr
    lines = [line.split(" ", 2)[2] for line in logs.stdout.splitlines()]
    assert lines == [
        "LifecycleEvent - AfterInstall",
        "Script - scripts/hook.sh",
        "[stdout]checking config",
        "[stderr]config is broken",
    ]
