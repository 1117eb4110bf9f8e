"""The ``shipyard`` command line, run as a real subprocess against a real server.

The live-progress and report renderers are pure functions; they are tested here with
hand-built data shaped like GetDeployment and BatchGetDeploymentTargets answers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.cli import pack, progress
from shipyard.config import AgentConfig, build
from tests.conftest import LiveServer, free_port
from tests.support import wait_until

# --- running the CLI -----------------------------------------------------------------


def cli_env(server: LiveServer | None = None, data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHIPYARD_"))}
    credentials_dir = data_dir or (server.data_dir if server else Path("/nonexistent"))
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials_dir / "credentials")
    env["AWS_CONFIG_FILE"] = str(credentials_dir / "no-such-config")
    if server is not None:
        env["SHIPYARD_ENDPOINT"] = server.url
    return env


def shipyard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shipyard: error: ")
    for word in words:
        assert word in lines[0]


def write_source(root: Path, *, appspec: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "scripts").mkdir()
    start = root / "scripts" / "start.sh"
    start.write_text("#!/bin/sh\necho started\n")
    start.chmod(0o755)
    (root / "index.html").write_text("<h1>hello</h1>\n")
    if appspec:
        (root / "appspec.yml").write_text(
            "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n"
            "hooks:\n  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 10\n"
        )
    return root


# --- usage mistakes: one line, exit 2, no server needed --------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], ["COMMAND"]),
        (["deploy", "--application", "a"], ["--group"]),
        (["deploy", "--application", "a", "--group", "g"], ["--bucket", "--github-repo"]),
        (["deploy", "--application", "a", "--group", "g", "--bucket", "b"], ["--key"]),
        (
            ["instance", "register", "web-1", "--tag", "novalue", "--agent-config", "x"],
            ["KEY=VALUE"],
        ),
        (["server", "--data-dir", "d", "--port", "70000"], ["port"]),
        (["agent", "--config", "/nonexistent/agent.yml"], ["/nonexistent/agent.yml"]),
        (["bogus"], ["bogus"]),
    ],
)
def test_usage_mistakes_print_one_line_and_exit_2(args: list[str], words: list[str]) -> None:
    assert_one_line_error(shipyard(*args, env=cli_env()), 2, *words)


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n"
    )
    env = cli_env(data_dir=tmp_path)
    env["SHIPYARD_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(shipyard("status", "d-ABCDEFGHI", env=env), 3, "cannot reach")


# --- against a live server ---------------------------------------------------------------


def test_instance_register_writes_agent_config(live_server: LiveServer, tmp_path: Path) -> None:
    output = tmp_path / "agent.yml"
    result = shipyard(
        "instance", "register", "web-1", "--tag", "role=web", "--tag", "env=prod",
        "--endpoint", live_server.url, "--agent-config", str(output),
        "--root-dir", str(tmp_path / "root"), "--log-dir", str(tmp_path / "logs"),
        env=cli_env(live_server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    config = build(AgentConfig, file=output, env={})
    assert config.endpoint == live_server.url
    assert config.instance_name == "web-1"
    assert config.root_dir == tmp_path / "root"
    assert config.log_dir == tmp_path / "logs"
    assert config.access_key_id and config.secret_access_key
    assert config.host_identifier == "arn:aws:iam::000000000000:user/shipyard/web-1"

    info = live_server.client().get_on_premises_instance(instanceName="web-1")["instanceInfo"]
    assert info["iamUserArn"] == config.host_identifier
    assert {(t["Key"], t["Value"]) for t in info["tags"]} == {("role", "web"), ("env", "prod")}

    listing = shipyard("instance", "list", env=cli_env(live_server))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[1].split() == [
        "web-1",
        "never-connected",
        "-",
        "env=prod",
        "role=web",
        "-",
    ]

    again = shipyard(
        "instance", "register", "web-1", "--agent-config", str(tmp_path / "again.yml"),
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(again, 4, "InstanceNameAlreadyRegisteredException")
    assert not (tmp_path / "again.yml").exists()

    gone = shipyard("instance", "deregister", "web-1", env=cli_env(live_server))
    assert gone.returncode == 0, gone.stderr
    listing = shipyard("instance", "list", env=cli_env(live_server))
    assert "web-1" not in listing.stdout


def test_push_registers_a_revision(live_server: LiveServer, tmp_path: Path) -> None:
    codedeploy = live_server.client()
    codedeploy.create_application(applicationName="web")
    source = write_source(tmp_path / "src")
    result = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "releases",
        "--description", "first cut", env=cli_env(live_server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "shipyard deploy --application web --group GROUP --bucket releases" in result.stdout
    assert "shipyard group create web GROUP" in result.stdout  # the app has no group yet
    key = result.stdout.split("--key ", 1)[1].split()[0]
    as_json = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "releases",
        "--description", "first cut", "--output", "json", env=cli_env(live_server),
    )  # fmt: skip
    revision = json.loads(as_json.stdout)  # nothing but the JSON on stdout
    assert revision["s3Location"]["key"] == key
    key = revision["s3Location"]["key"]
    assert revision["s3Location"]["eTag"]

    body = live_server.client("s3").get_object(Bucket="releases", Key=key)["Body"].read()
    archive = tmp_path / "pushed.zip"
    archive.write_bytes(body)
    with zipfile.ZipFile(archive) as bundle:
        assert "appspec.yml" in bundle.namelist()
        mode = bundle.getinfo("scripts/start.sh").external_attr >> 16
        assert mode & 0o111, "hook scripts must stay executable"

    info = codedeploy.get_application_revision(applicationName="web", revision=revision)
    assert info["revisionInfo"]["description"] == "first cut"


def test_push_refuses_a_missing_or_broken_appspec(live_server: LiveServer, tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", appspec=False)
    result = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "releases",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(result, 2, "appspec.yml")
    (source / "appspec.yml").write_text("version: 0.0\nos: [linux\n")
    broken = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "releases",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(broken, 2, "appspec.yml")
    assert "releases" not in [b["Name"] for b in live_server.client("s3").list_buckets()["Buckets"]]


def test_unknown_names_are_one_line(live_server: LiveServer, tmp_path: Path) -> None:
    source = write_source(tmp_path / "src")
    result = shipyard(
        "push", "--application", "nope", "--source", str(source), "--bucket", "releases",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(result, 4, "ApplicationDoesNotExistException")
    deploy = shipyard(
        "deploy", "--application", "nope", "--group", "g", "--bucket", "b", "--key", "k.zip",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(deploy, 4, "ApplicationDoesNotExistException")
    status = shipyard("status", "d-NOSUCHONE", env=cli_env(live_server))
    assert_one_line_error(status, 4, "DeploymentDoesNotExistException")
    # the extension operations are signed by hand: their errors read the same way
    logs = shipyard("logs", "d-NOSUCHONE", "--target", "web-1", env=cli_env(live_server))
    assert_one_line_error(logs, 4, "DeploymentDoesNotExistException")


def test_server_subcommand_serves_the_aws_cli(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(data_dir=data_dir)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shipyard",
            "server",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, server)
        result = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "deploy", "list-applications",
             "--endpoint-url", f"http://127.0.0.1:{port}", "--region", "us-east-1"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert '"applications": []' in result.stdout
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in out
    assert str((data_dir / "credentials").resolve()) in out
    assert "Traceback" not in err


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    def listening() -> bool:
        assert process.poll() is None, process.communicate()[1]
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, f"the server to listen on {port}", 20)


# --- packing -----------------------------------------------------------------------------


def test_pack_is_reproducible_and_keeps_modes(tmp_path: Path) -> None:
    source = write_source(tmp_path / "src")
    with pack.packed(source) as (first, digest):
        with zipfile.ZipFile(first) as bundle:
            names = bundle.namelist()
            assert bundle.getinfo("scripts/start.sh").external_attr >> 16 & 0o777 == 0o755
        os.utime(source / "index.html", (0, 0))  # timestamps do not change the bundle
        with pack.packed(source) as (_, digest_again):
            assert digest_again == digest
    assert names == ["appspec.yml", "index.html", "scripts/", "scripts/start.sh"]


@pytest.mark.parametrize(
    ("key", "kind"),
    [("a/b.zip", "zip"), ("b.tar", "tar"), ("b.tgz", "tgz"), ("b.TAR.GZ", "tgz"), ("b", "zip")],
)
def test_bundle_type_from_key(key: str, kind: str) -> None:
    assert pack.bundle_type_for(key) == kind


# --- rendering: pure functions over API-shaped data ---------------------------------------

T0 = 1_700_000_000.0


def event(name: str, status: str, start: float | None = None, end: float | None = None,
          **diagnostics: str) -> dict[str, Any]:  # fmt: skip
    found: dict[str, Any] = {"lifecycleEventName": name, "status": status}
    if start is not None:
        found["startTime"] = T0 + start
    if end is not None:
        found["endTime"] = T0 + end
    if diagnostics:
        found["diagnostics"] = diagnostics
    return found


def instance(target_id: str, status: str, *events: dict[str, Any]) -> dict[str, Any]:
    return {
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": "d-ABCDEFGHI",
            "targetId": target_id,
            "status": status,
            "lifecycleEvents": list(events),
        },
    }


def deployment(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "deploymentId": "d-ABCDEFGHI",
        "applicationName": "web",
        "deploymentGroupName": "prod",
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        "status": status,
        "createTime": T0,
        "startTime": T0,
        "deploymentOverview": {"Pending": 1, "InProgress": 1, "Succeeded": 1, "Failed": 0},
        "revision": {
            "revisionType": "S3",
            "s3Location": {"bucket": "releases", "key": "web/1.zip", "bundleType": "zip"},
        },
        **extra,
    }


RUNNING = [
    instance("web-1", "Succeeded", event("DownloadBundle", "Succeeded", 0.0, 0.5),
             event("AfterInstall", "Succeeded", 0.5, 1.0)),
    instance("web-2", "InProgress", event("DownloadBundle", "Succeeded", 1.0, 1.5),
             event("AfterInstall", "InProgress", 1.5)),
    instance("web-3", "Pending", event("DownloadBundle", "Pending"),
             event("AfterInstall", "Pending")),
]  # fmt: skip

FAILED_DIAGNOSTICS = {
    "errorCode": "ScriptFailed",
    "scriptName": "scripts/check.sh",
    "message": "Script at specified location: scripts/check.sh failed with exit code 3",
    "logTail": "[stdout]checking\n[stderr]port 80 closed\n",
}
FINISHED = [
    RUNNING[0],
    instance("web-2", "Failed", event("DownloadBundle", "Succeeded", 1.0, 1.5),
             event("AfterInstall", "Failed", 1.5, 2.25, **FAILED_DIAGNOSTICS)),
    instance("web-3", "Skipped", event("DownloadBundle", "Skipped"),
             event("AfterInstall", "Skipped")),
]  # fmt: skip


def test_live_table_shows_targets_by_events() -> None:
    lines = progress.live_table(deployment("InProgress"), RUNNING, now=T0 + 2.0)
    assert lines[0].startswith("d-ABCDEFGHI  InProgress  web/prod  2.0s")
    header, web1, web2, web3 = lines[1:5]
    assert header.split() == ["TARGET", "STATUS", "TIME", "EVENT", "Download", "AfInstall"]
    assert web1.split() == ["web-1", "Succeeded", "1.0s", "✓", "0.5s", "✓", "0.5s"]
    # a running host's time counts up to now; its current event is named
    assert web2.split() == ["web-2", "InProgress", "1.0s", "AfterInstall", "✓", "0.5s", "▸", "0.5s"]
    assert web3.split() == ["web-3", "Pending", "-", "·", "·"]
    assert lines[5] == progress.LEGEND
    # columns line up: every event column starts where its heading does
    assert web2.index("▸") == header.index("AfInstall")


def test_change_lines_announce_only_what_changed() -> None:
    first, seen = progress.change_lines({}, deployment("InProgress"), RUNNING, now=T0 + 2.0)
    assert first == [
        "[  2.0s] d-ABCDEFGHI  InProgress",
        "[  2.0s] web-1  DownloadBundle  Succeeded (0.5s)",
        "[  2.0s] web-1  AfterInstall  Succeeded (0.5s)",
        "[  2.0s] web-1  Succeeded",
        "[  2.0s] web-2  InProgress",
        "[  2.0s] web-2  DownloadBundle  Succeeded (0.5s)",
        "[  2.0s] web-2  AfterInstall  InProgress",
    ]
    again, seen = progress.change_lines(seen, deployment("InProgress"), RUNNING, now=T0 + 2.2)
    assert again == []
    final, _ = progress.change_lines(seen, deployment("Failed"), FINISHED, now=T0 + 3.0)
    assert final == [
        "[  3.0s] web-2  AfterInstall  Failed (0.8s): ScriptFailed: Script at specified "
        "location: scripts/check.sh failed with exit code 3",
        "[  3.0s] web-2  Failed",
        "[  3.0s] web-3  DownloadBundle  Skipped",
        "[  3.0s] web-3  AfterInstall  Skipped",
        "[  3.0s] web-3  Skipped",
        "[  3.0s] d-ABCDEFGHI  Failed",
    ]


def test_final_report_names_the_failing_event_and_its_output() -> None:
    failed = deployment(
        "Failed",
        completeTime=T0 + 3.0,
        errorInformation={"code": "HOOK_EXECUTION_FAILURE", "message": "too many failed"},
    )
    lines = progress.final_report(failed, FINISHED, now=T0 + 10)
    assert (
        "Deployment d-ABCDEFGHI Failed after 3.0s: HOOK_EXECUTION_FAILURE: too many failed" in lines
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("HOST"))
    assert lines[header].split() == ["HOST", "STATUS", "EVENTS", "DURATION", "EVENT", "DETAIL"]
    rows = {line.split()[0]: line for line in lines[header + 1 : header + 4]}
    assert rows["web-1"].split() == ["web-1", "Succeeded", "2/2", "1.0s"]
    assert rows["web-2"].split()[:5] == ["web-2", "Failed", "1/2", "1.2s", "AfterInstall"]
    assert rows["web-2"].endswith("ScriptFailed: Script at specified location: "
                                  "scripts/check.sh failed with exit code 3")  # fmt: skip
    assert rows["web-3"].split() == ["web-3", "Skipped", "0/2", "-"]
    assert "    [stderr]port 80 closed" in lines
    assert "    full output: shipyard logs d-ABCDEFGHI --target web-2 --event AfterInstall" in lines


def test_final_report_of_a_success_is_short() -> None:
    done = deployment("Succeeded", completeTime=T0 + 1.0)
    lines = progress.final_report(done, RUNNING[:1], now=T0 + 10)
    assert lines[1] == "Deployment d-ABCDEFGHI Succeeded after 1.0s"
    assert not any("full output" in line for line in lines)


def test_status_report_accepts_boto3_datetimes() -> None:
    # boto3 hands timestamps over as aware datetimes, not epoch numbers
    def as_datetime(value: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(value, dt.UTC)

    info = deployment("Succeeded", description="nightly", completeTime=as_datetime(T0 + 65))
    info["createTime"] = info["startTime"] = as_datetime(T0)
    target = instance("web-1", "Succeeded", event("AfterInstall", "Succeeded"))
    target["instanceTarget"]["lifecycleEvents"][0].update(
        startTime=as_datetime(T0 + 1), endTime=as_datetime(T0 + 2)
    )
    lines = progress.status_report(info, [target], now=T0 + 100)
    fields = {line.split("  ")[0]: line.split("  ", 1)[1].strip() for line in lines[:10]}
    assert fields["Status"] == "Succeeded"
    assert fields["Revision"] == "s3://releases/web/1.zip (zip)"
    assert fields["Created"] == "2023-11-14 22:13:20 UTC"
    assert fields["Duration"] == "1m05s"
    assert fields["Targets"] == "Pending 1, InProgress 1, Succeeded 1"
    assert fields["Description"] == "nightly"
    assert lines[-1].split() == ["web-1", "Succeeded", "1/1", "1.0s"]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.04, "0.0s"), (9.94, "9.9s"), (12.4, "12s"), (125, "2m05s"), (3725, "1h02m")],
)
def test_format_duration(value: float | None, text: str) -> None:
    assert progress.format_duration(value) == text


def test_instance_register_writes_the_stock_agent_files(
    live_server: LiveServer, tmp_path: Path
) -> None:
    endpoint = "https://deploy.example.com:8420"
    result = shipyard(
        "instance", "register", "stock-1", "--format", "codedeploy", "--endpoint", endpoint,
        "--agent-config", str(tmp_path), "--root-dir", "/srv/cd-root", "--pid-dir", "/run/cd",
        env=cli_env(live_server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    onpremises = tmp_path / "codedeploy.onpremises.yml"
    settings = tmp_path / "codedeployagent.yml"
    for written in (onpremises, settings):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
    keys = yaml.safe_load(onpremises.read_text())
    assert set(keys) == {"aws_access_key_id", "aws_secret_access_key", "iam_user_arn", "region"}
    assert keys["iam_user_arn"] == "arn:aws:iam::000000000000:user/shipyard/stock-1"
    assert keys["region"] == "us-east-1"
    info = live_server.client().get_on_premises_instance(instanceName="stock-1")["instanceInfo"]
    assert info["iamUserArn"] == keys["iam_user_arn"]
    # Ruby reads ":name:" keys as symbols, the way the stock agent's own file spells them.
    values = yaml.safe_load(settings.read_text())
    assert values[":deploy_control_endpoint"] == endpoint
    assert values[":s3_endpoint_override"] == endpoint
    assert values[":on_premises_config_file"] == str(onpremises)
    assert values[":root_dir"] == "/srv/cd-root"
    assert values[":pid_dir"] == "/run/cd"
    assert values[":log_dir"] == "/var/log/aws/codedeploy-agent/"
    assert all(line.startswith((":", "#", "---")) for line in settings.read_text().splitlines())


def test_instance_register_format_mistakes(live_server: LiveServer, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-conf-dir"
    stock = shipyard(
        "instance", "register", "s-1", "--format", "codedeploy", "--agent-config", str(missing),
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(stock, 2, "does not exist")
    own = shipyard(
        "instance", "register", "s-1", "--agent-config", str(tmp_path / "a.yml"),
        "--pid-dir", "/run",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(own, 2, "--pid-dir", "codedeploy")
    unknown = shipyard(
        "instance", "register", "s-1", "--format", "chef", "--agent-config", str(tmp_path),
        env=cli_env(live_server),
    )  # fmt: skip
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
    assert shipyard("instance", "list", env=cli_env(live_server)).stdout.count("s-1") == 0
