"""The command executor end to end: real bundles over HTTP, real installs, real scripts."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.agent.executor import (
    CommandResult,
    DeploymentSpec,
    GitHubRevision,
    S3Revision,
    execute,
    is_noop,
    noop_events,
    parse_spec,
)
from shipyard.config import AgentConfig
from tests.agent.archives import (
    build_on_disk,
    file_member,
    link_chain_escape,
    path_max_escape,
    write_tar,
)

GROUP_ID = "3f1c2d0e-0000-4000-8000-000000000001"
EVENTS_BEFORE_INSTALL = ("ApplicationStop", "DownloadBundle", "BeforeInstall", "Install")
EVENTS_AFTER_INSTALL = ("AfterInstall", "ApplicationStart", "ValidateService")
RECORD_SCRIPT = """#!/bin/sh
echo "$LIFECYCLE_EVENT $DEPLOYMENT_ID {label} $APPLICATION_NAME $DEPLOYMENT_GROUP_NAME \
$DEPLOYMENT_GROUP_ID ${{BUNDLE_BUCKET-}} ${{BUNDLE_KEY-}} ${{BUNDLE_VERSION-none}} \
${{BUNDLE_ETAG-none}} ${{BUNDLE_COMMIT-none}}" >> {record}
echo "hello from $LIFECYCLE_EVENT ({label})"
"""


class Site:
    """A bundle store (static files over HTTP on 127.0.0.1) plus an agent root and record."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.public = root / "public"
        self.record = root / "record.txt"
        self.destination = root / "srv" / "app"
        self.config = AgentConfig(
            endpoint="http://127.0.0.1:1",
            instance_name="host-1",
            access_key_id="AKIDTEST",
            secret_access_key="secret",
            host_identifier="arn:aws:iam::000000000000:user/host-1",
            root_dir=root / "agent-root",
        )
        self.output: list[str] = []

    def revision(
        self,
        label: str,
        *,
        leading_dir: str = "",
        hooks: str | None = None,
        script_mode: int = 0o755,
    ) -> str:
        """Build a tgz revision named ``label``; returns its file name in the store."""
        record = RECORD_SCRIPT.format(label=label, record=self.record)
        events = [*EVENTS_BEFORE_INSTALL, *EVENTS_AFTER_INSTALL]
        scripted = [e for e in events if e not in ("DownloadBundle", "Install")]
        hooks = (
            hooks
            if hooks is not None
            else "".join(
                f"  {event}:\n    - location: scripts/record.sh\n      timeout: 10\n"
                for event in scripted
            )
        )
        appspec = (
            "version: 0.0\nos: linux\nfiles:\n"
            f"  - source: app\n    destination: {self.destination}\nhooks:\n{hooks}"
        )
        files = {
            "appspec.yml": (appspec, 0o644),
            "scripts/record.sh": (record, script_mode),
            "app/index.html": (f"<h1>{label}</h1>\n", 0o644),
        }
        self.public.mkdir(exist_ok=True)
        name = f"{label}.tgz"
        with tarfile.open(self.public / name, "w:gz") as archive:
            for path, (text, mode) in files.items():
                data = text.encode()
                info = tarfile.TarInfo(leading_dir + path)
                info.size, info.mode = len(data), mode
                archive.addfile(info, io.BytesIO(data))
        return name

    def spec(self, deployment_id: str, bundle: str, **extra: Any) -> DeploymentSpec:
        etag = hashlib.md5((self.public / bundle).read_bytes()).hexdigest()
        payload = {
            "DeploymentId": deployment_id,
            "DeploymentGroupId": GROUP_ID,
            "DeploymentGroupName": "web",
            "ApplicationName": "shop",
            "DeploymentCreator": "user",
            "DeploymentType": "IN_PLACE",
            "AppSpecFilename": "appspec.yml",
            "Revision": {
                "RevisionType": "S3",
                "S3Revision": {
                    "Bucket": "bundles",
                    "Key": bundle,
                    "BundleType": "tgz",
                    "ETag": etag,
                },
            },
            "AgentActionOverrides": {"AgentOverrides": {"FileExistsBehavior": "OVERWRITE"}},
            "BundleUrl": f"http://127.0.0.1:{self.port}/{bundle}",
            **extra,
        }
        return parse_spec(payload)

    def run(self, command: str, spec: DeploymentSpec) -> CommandResult:
        return execute(command, spec, self.config, self.output.append, kill_grace=0.2)

    def deploy(self, spec: DeploymentSpec, events: tuple[str, ...]) -> None:
        for event in events:
            result = self.run(event, spec)
            assert result.error_code == 0, (event, result)

    def publish(self, name: str, build: Callable[[Path], Path]) -> str:
        """Put a bundle made by ``build(path)`` in the store under ``name``."""
        self.public.mkdir(exist_ok=True)
        build(self.public / name)
        return name

    def records(self) -> list[list[str]]:
        if not self.record.exists():
            return []
        return [line.split() for line in self.record.read_text().splitlines()]

    def deployment_dir(self, deployment_id: str) -> Path:
        return self.config.root_dir / GROUP_ID / deployment_id


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    public = tmp_path / "public"
    public.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(public))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Site(tmp_path, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_first_deployment_runs_every_event_in_order(site: Site) -> None:
    spec = site.spec("d-FIRST0001", site.revision("v1"))
    assert is_noop("ApplicationStop", spec, site.config)  # nothing installed yet
    assert not is_noop("DownloadBundle", spec, site.config)
    site.deploy(spec, EVENTS_BEFORE_INSTALL)
    assert is_noop("BlockTraffic", spec, site.config) is False  # not a hook: never a no-op
    assert not is_noop("AfterInstall", spec, site.config)
    site.deploy(spec, EVENTS_AFTER_INSTALL)

    etag = spec.revision.etag if isinstance(spec.revision, S3Revision) else ""
    common = ["d-FIRST0001", "v1", "shop", "web", GROUP_ID, "bundles", "v1.tgz", "none", etag]
    assert site.records() == [
        [event, *common, "none"]
        for event in ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
    ]
    assert (site.destination / "index.html").read_text() == "<h1>v1</h1>\n"
    deployment = site.deployment_dir("d-FIRST0001")
    assert sorted(p.name for p in deployment.iterdir()) == [
        "bundle.tar", "deployment-archive", "logs",
    ]  # fmt: skip
    instructions = site.config.root_dir / "deployment-instructions"
    names = ("-cleanup", "-install.json", "_last_successful_install", "_most_recent_install")
    assert sorted(p.name for p in instructions.iterdir()) == sorted(GROUP_ID + n for n in names)
    for marker in ("_last_successful_install", "_most_recent_install"):
        assert (instructions / f"{GROUP_ID}{marker}").read_text() == str(deployment)
    log = (deployment / "logs" / "scripts.log").read_text()
    assert "LifecycleEvent - ValidateService\n" in log
    assert "[stdout]hello from ValidateService (v1)\n" in log
    assert "".join(site.output) == log  # everything streamed was logged, and vice versa


def test_noop_events_follow_the_revision_each_hook_reads(site: Site) -> None:
    """What a result names as no-ops (``ShipyardNoopEvents``): before the download,
    only the hooks of the last good revision can be judged; after it, the new one's."""
    traffic = {"BeforeBlockTraffic", "AfterBlockTraffic", "BeforeAllowTraffic"}
    traffic |= {"AfterAllowTraffic"}
    first = site.spec("d-FIRST0001", site.revision("v1"))
    # Nothing installed yet: ApplicationStop and the block hooks have nothing to run;
    # the new revision's hooks are unknown until it is downloaded, so none is named.
    assert noop_events(first, site.config) == {
        "ApplicationStop",
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
    }
    site.deploy(first, EVENTS_BEFORE_INSTALL)
    assert noop_events(first, site.config) == traffic  # v1 has scripts for the other five
    site.deploy(first, EVENTS_AFTER_INSTALL)
    only_start = "  ApplicationStart:\n    - location: scripts/record.sh\n"
    second = site.spec("d-SECOND001", site.revision("v2", hooks=only_start))
    # ApplicationStop runs v1's script: not a no-op until v2 is on the host.
    assert noop_events(second, site.config) == {"BeforeBlockTraffic", "AfterBlockTraffic"}
    site.deploy(second, ("ApplicationStop", "DownloadBundle"))
    expected = traffic | {"ApplicationStop", "BeforeInstall", "AfterInstall", "ValidateService"}
    assert noop_events(second, site.config) == expected
    for event in expected:
        assert is_noop(event, second, site.config)
    assert not is_noop("ApplicationStart", second, site.config)


def test_application_stop_comes_from_the_previous_successful_revision(site: Site) -> None:
    first = site.spec("d-FIRST0001", site.revision("v1"))
    site.deploy(first, (*EVENTS_BEFORE_INSTALL, *EVENTS_AFTER_INSTALL))
    second = site.spec("d-SECOND001", site.revision("v2", leading_dir="shop-v2/"))
    site.record.unlink()
    site.output.clear()
    assert not is_noop("ApplicationStop", second, site.config)
    site.deploy(second, (*EVENTS_BEFORE_INSTALL, *EVENTS_AFTER_INSTALL))
    events = [(row[0], row[1], row[2]) for row in site.records()]
    assert events == [
        ("ApplicationStop", "d-SECOND001", "v1"),  # the old revision's script, new env
        ("BeforeInstall", "d-SECOND001", "v2"),
        ("AfterInstall", "d-SECOND001", "v2"),
        ("ApplicationStart", "d-SECOND001", "v2"),
        ("ValidateService", "d-SECOND001", "v2"),
    ]
    assert (site.destination / "index.html").read_text() == "<h1>v2</h1>\n"
    # The leading "shop-v2/" directory held the appspec, so it was stripped.
    assert (site.deployment_dir("d-SECOND001") / "deployment-archive/appspec.yml").is_file()
    log = (site.deployment_dir("d-SECOND001") / "logs/scripts.log").read_text()
    assert "[stdout]hello from ApplicationStop (v1)\n" in log


def test_hook_without_scripts_is_a_noop_success(site: Site) -> None:
    hooks = "  AfterInstall:\n    - location: scripts/record.sh\n"
    spec = site.spec("d-NOOPS0001", site.revision("v1", hooks=hooks))
    site.deploy(spec, ("DownloadBundle", "Install"))
    assert is_noop("ValidateService", spec, site.config)
    assert site.run("ValidateService", spec) == CommandResult(0, "", "Succeeded", "")
    assert site.records() == []


def test_retention_keeps_five_directories_and_the_last_successful(site: Site) -> None:
    bundle = site.revision("v1")
    first = site.spec("d-KEEP00001", bundle)
    site.deploy(first, ("DownloadBundle", "Install"))
    for n in range(2, 8):
        site.deploy(site.spec(f"d-KEEP0000{n}", bundle), ("DownloadBundle",))
        # Distinct, increasing ages; the install's directory is the oldest of all.
        for age, m in enumerate(range(n, 0, -1)):
            when = 1_700_000_000 - age * 60
            if site.deployment_dir(f"d-KEEP0000{m}").exists():
                os.utime(site.deployment_dir(f"d-KEEP0000{m}"), (when, when))
    kept = sorted(p.name for p in (site.config.root_dir / GROUP_ID).iterdir())
    assert kept == ["d-KEEP00001", "d-KEEP00004", "d-KEEP00005", "d-KEEP00006", "d-KEEP00007"]


def test_git_revision_end_to_end(site: Site, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    site.revision("v1")
    with tarfile.open(site.public / "v1.tgz") as archive:
        archive.extractall(work, filter="data")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "v1"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, check=True, capture_output=True, text=True
    ).stdout.strip()
    spec = parse_spec(
        {
            "DeploymentId": "d-GIT000001",
            "DeploymentGroupId": GROUP_ID,
            "DeploymentGroupName": "web",
            "ApplicationName": "shop",
            "Revision": {
                "RevisionType": "GitHub",
                "GitHubRevision": {"Account": "me", "Repository": "me/shop", "CommitId": commit},
            },
            "GitUrl": f"file://{work}",
        }
    )
    site.deploy(spec, ("DownloadBundle", "Install", "AfterInstall"))
    assert site.records()[0][0] == "AfterInstall"
    assert site.records()[0][-1] == commit
    assert site.records()[0][6:8] == ["none", "none"]  # no S3 variables for git bundles


def test_failures_come_back_as_readable_results(site: Site) -> None:
    spec = site.spec("d-FAIL00001", site.revision("v1"))
    unsupported = site.run("Reboot", spec)
    assert (unsupported.error_code, unsupported.message) == (5, "Unsupported command type: Reboot")
    before = site.run("BeforeInstall", spec)
    assert before.error_code == 5 and "DownloadBundle must succeed first" in before.message
    install = site.run("Install", spec)
    assert install.error_code == 5 and "DownloadBundle must succeed first" in install.message
    (site.public / "v1.tgz").unlink()
    missing = site.run("DownloadBundle", spec)
    assert missing.error_code == 5
    assert missing.message.startswith("bundle not found in store (HTTP 404)")


def test_etag_mismatch_fails_the_download(site: Site) -> None:
    spec = site.spec("d-ETAG00001", site.revision("v1"))
    site.revision("v1", leading_dir="changed/")  # the object changed after the deployment
    result = site.run("DownloadBundle", spec)
    assert result.error_code == 5 and "does not match eTag" in result.message
    assert not (site.deployment_dir("d-ETAG00001") / "deployment-archive").exists()


def test_bad_appspec_and_existing_files_are_reported(site: Site) -> None:
    spec = site.spec("d-BADSPEC01", site.revision("v1", hooks="  AfterInstall: [[[\n"))
    assert site.run("DownloadBundle", spec).error_code == 0
    result = site.run("Install", spec)
    assert result.error_code == 5 and "not valid YAML" in result.message

    site.destination.mkdir(parents=True)
    (site.destination / "index.html").write_text("hand-made")
    strict = site.spec(
        "d-STRICT001",
        site.revision("v2"),
        AgentActionOverrides={"AgentOverrides": {"FileExistsBehavior": "disallow"}},
    )
    site.deploy(strict, ("DownloadBundle",))
    refused = site.run("Install", strict)
    assert refused.error_code == 5 and "already exists" in refused.message
    assert (site.destination / "index.html").read_text() == "hand-made"


def test_appspec_file_name_fallbacks(site: Site) -> None:
    spec = site.spec("d-YAML00001", site.revision("v1"), AppSpecFilename="custom.yml")
    site.deploy(spec, ("DownloadBundle",))
    archive = site.deployment_dir("d-YAML00001") / "deployment-archive"
    (archive / "appspec.yml").rename(archive / "appspec.yaml")
    site.deploy(spec, ("Install", "AfterInstall"))
    assert [row[0] for row in site.records()] == ["AfterInstall"]
    (archive / "appspec.yaml").unlink()
    result = site.run("AfterInstall", spec)
    assert result.error_code == 5 and "no AppSpec file in the revision" in result.message


def test_an_appspec_link_out_of_the_bundle_is_not_read(site: Site) -> None:
    """appspec.yml -> a link chain that climbs out; the file beyond is never read as root."""
    spec = site.spec("d-LINKSPEC1", site.revision("v1"))
    site.deploy(spec, ("DownloadBundle",))
    archive = site.deployment_dir("d-LINKSPEC1") / "deployment-archive"
    (archive.parent / "outside.yml").write_text("version: 0.0\nos: linux\n")
    (archive / "appspec.yml").unlink()
    build_on_disk(archive, link_chain_escape())  # x and y2 lead to the archive's parent
    (archive / "appspec.yml").symlink_to("y2/outside.yml")
    assert (archive / "appspec.yml").read_text().startswith("version")  # the kernel's view
    result = site.run("Install", spec)
    assert result.error_code == 5 and "no AppSpec file in the revision" in result.message


def test_unexpected_errors_never_escape(site: Site) -> None:
    spec = site.spec("d-BROKEN001", site.revision("v1"))
    site.config.root_dir.parent.mkdir(parents=True, exist_ok=True)
    site.config.root_dir.write_text("a file where the agent root should be")
    result = site.run("DownloadBundle", spec)
    assert result.error_code == 5
    assert result.message.startswith("DownloadBundle failed unexpectedly: ")


def test_groups_deploy_concurrently(site: Site) -> None:
    bundle = site.revision("v1", hooks="  AfterInstall:\n    - location: scripts/record.sh\n")
    results: dict[str, list[int]] = {}

    def deploy(group: str) -> None:
        spec = site.spec(f"d-{group.upper()}", bundle, DeploymentGroupId=group)
        codes = []
        for command in ("DownloadBundle", "AfterInstall"):
            codes.append(execute(command, spec, site.config, lambda _line: None).error_code)
        results[group] = codes

    threads = [threading.Thread(target=deploy, args=(f"group{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {f"group{n}": [0, 0] for n in range(4)}
    assert sorted(row[1] for row in site.records()) == [f"d-GROUP{n}" for n in range(4)]


# --- parse_spec ------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "DeploymentId": "d-ABCDEFGH1",
    "DeploymentGroupId": GROUP_ID,
    "DeploymentGroupName": "web",
    "ApplicationName": "shop",
    "Revision": {
        "RevisionType": "S3",
        "S3Revision": {"Bucket": "b", "Key": "k.zip", "BundleType": "zip"},
    },
}


def test_parse_spec_defaults_and_arn_ids() -> None:
    arn = "arn:aws:codedeploy:us-east-1:000000000000:deployment/d-ABCDEFGH1"
    spec = parse_spec({**BASE, "DeploymentId": arn, "MaxBundleBytes": 1024})
    assert spec == DeploymentSpec(
        deployment_id="d-ABCDEFGH1",
        deployment_group_id=GROUP_ID,
        deployment_group_name="web",
        application_name="shop",
        revision=S3Revision(bucket="b", key="k.zip", bundle_type="zip"),
        max_bundle_bytes=1024,
    )
    github = parse_spec(
        {
            **BASE,
            "Revision": {
                "RevisionType": "GitHub",
                "GitHubRevision": {"Repository": "a/b", "CommitId": "c"},
            },
        }
    )
    assert github.revision == GitHubRevision(account="", repository="a/b", commit_id="c")


def _s3(**fields: str) -> dict[str, Any]:
    return {"Revision": {"RevisionType": "S3", "S3Revision": fields}}


def _github(**fields: str) -> dict[str, Any]:
    return {"Revision": {"RevisionType": "GitHub", "GitHubRevision": fields}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DeploymentId": ""}, "missing DeploymentId"),
        ({"DeploymentGroupId": None}, "missing DeploymentGroupId"),
        ({"DeploymentGroupName": ""}, "missing DeploymentGroupName"),
        ({"ApplicationName": 7}, "ApplicationName must be a string"),
        ({"DeploymentGroupId": "../etc"}, "DeploymentGroupId is not a valid id"),
        ({"DeploymentId": "d-NEWLINE01\n"}, "DeploymentId is not a valid id"),
        ({"DeploymentId": "d-" + "1" * 5000}, "DeploymentId is not a valid id"),
        ({"AppSpecFilename": "../../etc/shadow"}, "AppSpecFilename must be a path inside"),
        ({"AppSpecFilename": "/etc/shadow"}, "AppSpecFilename must be a path inside"),
        ({"Revision": {}}, "missing Revision.RevisionType"),
        ({"Revision": {"RevisionType": "Local File"}}, "unsupported revision type 'Local File'"),
        (_s3(Bucket="b", BundleType="tar"), "missing S3Revision.Key"),
        (_s3(Bucket="b", Key="k", BundleType="rar"), "BundleType must be tar, tgz or zip"),
        (_github(Repository="a/b"), "missing GitHubRevision.CommitId"),
        ({"MaxBundleBytes": -1}, "MaxBundleBytes must be a positive integer"),
        ({"AgentActionOverrides": "OVERWRITE"}, "AgentActionOverrides must be an object"),
    ],
)
def test_parse_spec_rejects_bad_payloads(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec({**BASE, **change})


# ---- issue 10: the bundle is the attacker's -------------------------------------------


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory every user may pass through (as /opt is), unlike pytest's tmp_path."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-agent-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base)


def test_an_unprivileged_user_cannot_rewrite_a_hook_before_it_runs(
    site: Site, open_base: Path
) -> None:
    """A 0777 hook script, downloaded, then rewritten by another local user before
    ApplicationStart, used to run as root."""
    root = open_base / "agent-root"
    root.mkdir(mode=0o755)  # as an older agent left it
    root.chmod(0o755)
    site.config = dataclasses.replace(site.config, root_dir=root)
    spec = site.spec("d-MODES0001", site.revision("v1", script_mode=0o777))
    site.deploy(spec, ("DownloadBundle", "Install"))

    script = site.deployment_dir("d-MODES0001") / "deployment-archive" / "scripts" / "record.sh"
    attack = subprocess.run(
        ["/bin/sh", "-c", f"printf '#!/bin/sh\\nid > /tmp/pwned\\n' > '{script}'"],
        user="nobody",
        capture_output=True,
        text=True,
        check=False,
    )
    assert attack.returncode != 0 and "Permission denied" in attack.stderr
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for directory in (root / GROUP_ID, site.deployment_dir("d-MODES0001")):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    status = script.stat()  # even were the directories open, the file is not theirs
    assert (stat.S_IMODE(status.st_mode), status.st_uid) == (0o755, 0)

    assert site.run("ApplicationStart", spec).error_code == 0
    assert [row[:3] for row in site.records()] == [["ApplicationStart", "d-MODES0001", "v1"]]


def test_a_bundle_that_writes_outside_fails_the_download(site: Site, tmp_path: Path) -> None:
    victim = tmp_path / "srv" / "victim"
    victim.mkdir(parents=True)
    bundle = site.publish("maze.tar", lambda path: write_tar(path, path_max_escape(victim)))
    spec = site.spec("d-ESCAPE001", bundle)
    result = site.run("DownloadBundle", spec)
    assert result.error_code == 5
    assert result.message.startswith("unsafe bundle member ")
    assert list(victim.iterdir()) == []
    assert not (site.deployment_dir("d-ESCAPE001") / "deployment-archive").exists()


def test_the_expanded_size_cap_fails_the_download_naming_it(site: Site) -> None:
    site.config = dataclasses.replace(site.config, max_unpacked_bytes=1024 * 1024)

    def zeros(path: Path) -> Path:
        return write_tar(path, [file_member("zeros.bin", bytes(8 * 1024 * 1024))], "w:gz")

    spec = site.spec("d-BOMB00001", site.publish("bomb.tgz", zeros))
    assert (site.public / "bomb.tgz").stat().st_size < 64 * 1024
    result = site.run("DownloadBundle", spec)
    assert result.error_code == 5
    assert result.message == (
        "bundle expands to more than 1048576 bytes (the agent's max_unpacked_bytes limit)"
    )
