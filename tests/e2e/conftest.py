"""End-to-end fixtures: a live server plus real agent processes, each host with its
own filesystem view of the shared destination paths."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shipyard import sigv4
from shipyard.config import AgentConfig
from shipyard.demo.fleet import LocalHost, can_isolate, prepare_host, stop_all
from tests.conftest import LiveServer, service_missing, start_live_server

SHARED_ROOT = Path("/srv/shipyard-e2e")


def call_extension(server: LiveServer, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """A signed JSON 1.1 call to a Shipyard extension operation."""
    import datetime as dt
    import urllib.request

    data = json.dumps(body).encode()
    host = server.url.removeprefix("http://")
    headers = sigv4.sign_headers(
        sigv4.Credentials(server.access_key_id, server.secret_access_key),
        method="POST",
        host=host,
        path="/",
        body=data,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"CodeDeploy_20141006.{op}",
        },
        region=server.region,
        service="codedeploy",
        amz_date=dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"),
    )
    request = urllib.request.Request(server.url + "/", data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read() or b"{}")
    return result


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


def issued_agent_config(server: LiveServer, name: str, home: Path, **overrides: Any) -> AgentConfig:
    """The agent config of registered instance ``name``, with keys issued for it now
    through ShipyardIssueInstanceCredentials."""
    keys = call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    values: dict[str, Any] = {
        "endpoint": server.url,
        "instance_name": name,
        "access_key_id": keys["accessKeyId"],
        "secret_access_key": keys["secretAccessKey"],
        "host_identifier": keys["hostIdentifier"],
        "root_dir": home / "root",
        "log_dir": home / "log",
    }
    return AgentConfig(**{**values, **overrides})


@dataclass
class Fleet:
    server: LiveServer
    base: Path
    isolate: bool
    hosts: list[LocalHost] = field(default_factory=list)

    @property
    def cd(self) -> Any:
        return self.server.client("codedeploy")

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
                self.server, "ShipyardIssueInstanceCredentials", {"instanceName": name}
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
            self.hosts.append(host)
            if start:
                host.start()

    def host(self, name: str) -> LocalHost:
        return next(h for h in self.hosts if h.name == name)

    def wait(self, deployment_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Poll GetDeployment until terminal (polling, not sleeping for a timeout)."""
        cd = self.cd
        deadline = time.monotonic() + timeout
        while True:
            info: dict[str, Any] = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                return info
            if time.monotonic() > deadline:
                logs = {h.name: (h.home / "agent.out").read_text() for h in self.hosts}
                raise AssertionError(f"deployment not finished: {info}\nagent output: {logs}")
            time.sleep(0.05)

    def targets(self, deployment_id: str) -> dict[str, dict[str, Any]]:
        cd = self.cd
        ids = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
        found = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
        return {
            t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found["deploymentTargets"]
        }


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
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    yield from fleet_on_server(tmp_path)


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


# ---- helpers for the fault tests (test_faults.py, test_server_crash.py) -------------------


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` every 50 ms until it returns something truthy, and return that;
    fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def signal_agent(host: LocalHost, signum: int) -> None:
    """Send ``signum`` to the agent's whole process group (with isolation the agent is
    ``unshare … sh -c 'mount …; exec python …'`` in a session of its own). Hook scripts
    run in sessions of their own, so they are not hit."""
    assert host.process is not None, f"the agent of {host.name} was never started"
    os.killpg(host.process.pid, signum)
