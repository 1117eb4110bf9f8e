"""Revision kinds end to end: a GitHub revision fetched from a real git repository,
tar and tgz S3 bundles, an eTag that does not match the stored bundle, and a revision
whose bundle does not exist."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, fleet_on_server, make_bundle
from tests.e2e.test_failures import event_of
from tests.e2e.test_in_place import deploy, setup_group

GIT_ACCOUNT, GIT_REPO = "acme", "storefront"

RECORD_ENV = f"""#!/bin/sh
env | grep '^BUNDLE_' | sort > {SHARED_ROOT}/bundle-env.txt
echo "hook saw commit $BUNDLE_COMMIT"
"""


def appspec(destination: str) -> str:
    return (
        f"version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {destination}\n"
        "hooks:\n  AfterInstall:\n    - location: scripts/record.sh\n      timeout: 30\n"
    )


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit_files(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.endswith(".sh"):
            path.chmod(0o755)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


@pytest.fixture
def git_base(tmp_path: Path) -> Path:
    """Where the server's git_base_url points: repositories live at <base>/<account>/<repo>."""
    base = tmp_path / "git"
    base.mkdir()
    return base


@pytest.fixture
def git_fleet(tmp_path: Path, git_base: Path) -> Iterator[Fleet]:
    """Like the ``fleet`` fixture, on a server whose GitHub revisions come from ``git_base``."""
    yield from fleet_on_server(tmp_path, git_base_url=git_base.as_uri())


@pytest.fixture
def repository(tmp_path: Path, git_base: Path) -> dict[str, str]:
    """A bare repository at <base>/acme/storefront with two commits; their shas by version."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    shas = {}
    for version in ("v1", "v2"):
        files = {
            "appspec.yml": appspec(f"{SHARED_ROOT}/git-www"),
            "site/index.html": f"<h1>{version} from git</h1>",
            "scripts/record.sh": RECORD_ENV,
        }
        shas[version] = commit_files(work, files, f"release {version}")
    bare = git_base / GIT_ACCOUNT / GIT_REPO
    bare.parent.mkdir(parents=True)
    git("init", "-q", "--bare", str(bare), cwd=tmp_path)
    git("push", "-q", str(bare), "main", cwd=work)
    return shas


def github_revision(commit: str) -> dict[str, Any]:
    return {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": f"{GIT_ACCOUNT}/{GIT_REPO}", "commitId": commit},
    }


def test_github_revision_is_fetched_at_the_named_commit(
    git_fleet: Fleet, repository: dict[str, str]
) -> None:
    setup_group(git_fleet, ["git-1", "git-2"], "CodeDeployDefault.AllAtOnce")
    # Not the branch tip: the agent must fetch exactly the commit the revision names.
    commit = repository["v1"]
    info = deploy(git_fleet, github_revision(commit))
    assert info["status"] == "Succeeded", info
    assert info["revision"] == github_revision(commit)
    for host in git_fleet.hosts:
        assert host.view(SHARED_ROOT / "git-www" / "index.html").read_text() == (
            "<h1>v1 from git</h1>"
        )
        # A GitHub revision gives hooks BUNDLE_COMMIT and none of the S3 variables.
        recorded = host.view(SHARED_ROOT / "bundle-env.txt").read_text().splitlines()
        assert recorded == [f"BUNDLE_COMMIT={commit}"]
    targets = git_fleet.targets(info["deploymentId"])
    assert {t["status"] for t in targets.values()} == {"Succeeded"}
    revisions = git_fleet.cd.list_application_revisions(applicationName="shop")["revisions"]
    assert revisions == [github_revision(commit)]


def test_github_revision_with_unknown_commit_fails_download(
    git_fleet: Fleet, repository: dict[str, str]
) -> None:
    setup_group(git_fleet, ["git-1"])
    missing = "0123456789abcdef0123456789abcdef01234567"
    assert missing not in repository.values()
    info = deploy(git_fleet, github_revision(missing))
    assert info["status"] == "Failed"
    target = git_fleet.targets(info["deploymentId"])["git-1"]
    event = event_of(target, "DownloadBundle")
    assert event["status"] == "Failed"
    message = event["diagnostics"]["message"]
    assert f"commit {missing} not found" in message
    assert f"{GIT_ACCOUNT}/{GIT_REPO}" in message
    assert event_of(target, "Install")["status"] == "Skipped"


@pytest.mark.parametrize("kind", ["tar", "tgz"])
def test_tar_bundles_deploy(fleet: Fleet, upload: Uploader, kind: str) -> None:
    setup_group(fleet, ["tar-1"])
    bundle = make_bundle(
        {
            "appspec.yml": appspec(f"{SHARED_ROOT}/tar-www"),
            "site/index.html": f"packed as {kind}",
            "site/deep/nested/file.txt": "nested",
            "scripts/record.sh": RECORD_ENV,
        },
        kind=kind,
    )
    revision = upload(f"shop/release.{kind}", bundle)
    assert revision["s3Location"]["bundleType"] == kind
    info = deploy(fleet, revision)
    assert info["status"] == "Succeeded", info
    host = fleet.host("tar-1")
    assert host.view(SHARED_ROOT / "tar-www" / "index.html").read_text() == f"packed as {kind}"
    nested = host.view(SHARED_ROOT / "tar-www" / "deep" / "nested" / "file.txt")
    assert nested.read_text() == "nested"
    recorded = host.view(SHARED_ROOT / "bundle-env.txt").read_text().splitlines()
    assert f"BUNDLE_KEY=shop/release.{kind}" in recorded
    assert f"BUNDLE_ETAG={revision['s3Location']['eTag']}" in recorded


def test_etag_mismatch_fails_download(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["etag-1"])
    revision = upload("shop/real.zip", make_bundle({"appspec.yml": "version: 0.0\nos: linux\n"}))
    real_etag = revision["s3Location"]["eTag"]
    wrong_etag = "0" * 32
    assert real_etag != wrong_etag
    revision["s3Location"]["eTag"] = wrong_etag
    fleet.cd.register_application_revision(applicationName="shop", revision=revision)
    info = deploy(fleet, revision)
    assert info["status"] == "Failed"
    target = fleet.targets(info["deploymentId"])["etag-1"]
    event = event_of(target, "DownloadBundle")
    assert event["status"] == "Failed"
    message = event["diagnostics"]["message"]
    assert "eTag" in message
    assert wrong_etag in message
    assert real_etag in message
    assert event_of(target, "Install")["status"] == "Skipped"


def test_revision_without_a_bundle_is_refused_at_creation(fleet: Fleet, upload: Uploader) -> None:
    setup_group(fleet, ["none-1"])
    upload("shop/exists.zip", make_bundle({"appspec.yml": "version: 0.0\nos: linux\n"}))
    missing = {
        "revisionType": "S3",
        "s3Location": {"bucket": "bundles", "key": "shop/never-uploaded.zip", "bundleType": "zip"},
    }
    cd = fleet.cd
    with pytest.raises(ClientError) as raised:
        cd.create_deployment(applicationName="shop", deploymentGroupName="web", revision=missing)
    error = raised.value.response["Error"]
    assert error["Code"] == "RevisionDoesNotExistException"
    assert "shop/never-uploaded.zip" in error["Message"]
    # Nothing was created: the group has no deployment and no attempt recorded.
    assert (
        cd.list_deployments(applicationName="shop", deploymentGroupName="web")["deployments"] == []
    )
    group = cd.get_deployment_group(applicationName="shop", deploymentGroupName="web")
    assert "lastAttemptedDeployment" not in group["deploymentGroupInfo"]
