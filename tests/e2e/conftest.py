"""End-to-end fixtures: a live server plus real agent processes, each host with its
own filesystem view of the shared destination paths."""

from __future__ import annotations

import io
import os
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.demo.fleet import LocalHost, can_isolate, prepare_host, stop_all
from tests.conftest import LiveServer, service_missing, start_live_server
from tests.support import call_extension, wait_until

SHARED_ROOT = Path("/srv/shipyard-e2e")
FINISHED = ("Succeeded", "Failed", "Stopped")


def blue_green_members(
    *,
    ready_wait_minutes: int | None = 60,
    termination_wait_minutes: int = 60,
    provisioning: str = "DISCOVER_EXISTING",
    rollback: bool = False,
) -> dict[str, Any]:
    """The deployment-group members that make a group blue/green, AllAtOnce, behind
    its load balancer: a ready wait (None: reroute at once), TERMINATE after the
    termination wait, and the green fleet's provisioning option."""
    if ready_wait_minutes is None:
        ready: dict[str, Any] = {"actionOnTimeout": "CONTINUE_DEPLOYMENT"}
    else:
        ready = {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": ready_wait_minutes}
    members: dict[str, Any] = {
        "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "blueGreenDeploymentConfiguration": {
            "deploymentReadyOption": ready,
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": termination_wait_minutes,
            },
            "greenFleetProvisioningOption": {"action": provisioning},
        },
    }
    if rollback:
        members["autoRollbackConfiguration"] = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    return members


@dataclass
class Fleet:
    server: LiveServer
    base: Path
    isolate: bool
    hosts: list[LocalHost] = field(default_factory=list)
    cafile: Path | None = None  # over HTTPS: the one certificate authority trusted

    @property
    def cd(self) -> Any:
        if self.cafile is None:
            return self.server.client("codedeploy")
        return self.server.client("codedeploy", verify=str(self.cafile))

    def add_hosts(self, names: list[str], tags: dict[str, str], *, start: bool = True) -> None:
        cd = self.cd
        for name in names:
            arn = f"arn:aws:iam::000000000000:user/shipyard/{name}"
            cd.register_on_premises_instance(instanceName=name, iamUserArn=arn)
            if tags:
                cd.add_tags_to_on_premises_instances(
                    instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags.items()]
                )
            creds = call_extension(
                self.server,
                "ShipyardIssueInstanceCredentials",
                {"instanceName": name},
                cafile=self.cafile,
            )
            host = prepare_host(
                self.base,
                name,
                self.server.url,
                (creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]),
                [SHARED_ROOT],
                isolate=self.isolate,
                poll_seconds=5.0,
            )
            if self.cafile is not None:
                config = yaml.safe_load(host.config_path.read_text())
                config["ca_file"] = str(self.cafile)
                host.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            self.hosts.append(host)
            if start:
                host.start()

    def host(self, name: str) -> LocalHost:
        return next(h for h in self.hosts if h.name == name)

    def wait(
        self,
        deployment_id: str,
        timeout: float = 60.0,
        done: Callable[[dict[str, Any]], bool] = lambda info: info["status"] in FINISHED,
    ) -> dict[str, Any]:
        """Poll GetDeployment until ``done(deploymentInfo)`` (by default: until the
        deployment has finished), and return that deploymentInfo."""
        cd = self.cd
        seen: list[dict[str, Any]] = [{}]

        def reached() -> dict[str, Any] | None:
            seen[0] = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            return seen[0] if done(seen[0]) else None

        def story() -> str:
            logs = {h.name: (h.home / "agent.out").read_text() for h in self.hosts}
            return f"the deployment to get there: {seen[0]}\nagent output: {logs}"

        return wait_until(reached, story, timeout)

    def targets(self, deployment_id: str) -> dict[str, dict[str, Any]]:
        cd = self.cd
        ids = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
        found = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
        return {
            t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found["deploymentTargets"]
        }


def commands_run(fleet: Fleet, deployment_id: str) -> dict[str, list[str]]:
    """Per host, the commands of ``deployment_id`` its agent started, from its log."""
    marker = f"deployment {deployment_id})"
    found = {}
    for host in fleet.hosts:
        log = (host.home / "log" / "shipyard-agent.log").read_text()
        found[host.name] = [
            line.split("] ", 1)[1].split(":", 1)[0]
            for line in log.splitlines()
            if ": running (command " in line and line.endswith(marker)
        ]
    return found


def make_bundle(
    files: dict[str, str | bytes], kind: str = "zip", modes: dict[str, int] | None = None
) -> bytes:
    """An archive holding ``files`` (path → content); scripts get mode 0755."""
    modes = modes or {}
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, content in files.items():
                info = zipfile.ZipInfo(path)
                mode = modes.get(path, 0o755 if path.endswith(".sh") else 0o644)
                info.external_attr = (0o100000 | mode) << 16
                archive.writestr(info, content)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz" if kind == "tgz" else "w") as archive:
            for path, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mode = modes.get(path, 0o755 if path.endswith(".sh") else 0o644)
                info.mtime = int(time.time())
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def fleet(tmp_path: Path, database: str) -> Iterator[Fleet]:
    """Hosts with real agents (added by the test) and their server: on SQLite, unless
    the test runs ``on_both_databases``."""
    yield from fleet_on_server(tmp_path, database=database)


Uploader = Callable[[str, bytes], dict[str, Any]]


@pytest.fixture
def upload(fleet: Fleet) -> Uploader:
    """Put a bundle in the built-in store; returns the S3 revision for it."""
    return make_uploader(fleet.server)


def fleet_on_server(tmp_path: Path, **overrides: Any) -> Iterator[Fleet]:
    """What the ``fleet`` fixture yields, on a server started with ``overrides`` for
    ``start_live_server`` (e.g. ``database=...``, ``git_base_url=...``)."""
    isolate = can_isolate()
    if not isolate:
        service_missing("private mount namespaces (unshare --mount) for per-host filesystem views")
    for server in start_live_server(tmp_path / "server", **overrides):
        fleet = Fleet(server, tmp_path / "hosts", isolate)
        try:
            yield fleet
        finally:
            stop_all(fleet.hosts)


def make_uploader(server: LiveServer, **client_args: Any) -> Uploader:
    """The ``upload`` fixture's function for any server; ``client_args`` go to boto3
    (e.g. ``verify=`` a CA file)."""
    s3 = server.client("s3", **client_args)
    buckets: set[str] = set()

    def put(key: str, data: bytes, bucket: str = "bundles") -> dict[str, Any]:
        if bucket not in buckets:
            s3.create_bucket(Bucket=bucket)
            buckets.add(bucket)
        kind = "zip" if key.endswith(".zip") else "tgz" if key.endswith(".tgz") else "tar"
        etag = s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
        location = {"bucket": bucket, "key": key, "bundleType": kind, "eTag": etag}
        return {"revisionType": "S3", "s3Location": location}

    return put


# ---- a helper for the fault tests (test_faults.py, test_server_crash.py) -------------------


def signal_agent(host: LocalHost, signum: int) -> None:
    """Send ``signum`` to the agent's whole process group (with isolation the agent is
    ``unshare … sh -c 'mount …; exec python …'`` in a session of its own). Hook scripts
    run in sessions of their own, so they are not hit."""
    assert host.process is not None, f"the agent of {host.name} was never started"
    os.killpg(host.process.pid, signum)
