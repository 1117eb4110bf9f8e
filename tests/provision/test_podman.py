"""Provisioners: the contract on every kind, and a real deployment to a Podman host.

The Podman tests start real containers (rootful Podman, ``--rootfs /:O``) running the
real agent against a live server; each container starts in well under a second. Every
container a test starts is removed when it ends, whatever happened.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.config import AgentConfig
from shipyard.provision import (
    PROVISIONERS,
    Provisioner,
    ProvisionerConfig,
    ProvisionError,
    get_provisioner,
)
from shipyard.provision.memory import MemoryProvisioner
from shipyard.provision.podman import PodmanProvisioner
from tests.conftest import LiveServer, service_missing, start_live_server
from tests.e2e.conftest import make_bundle, make_uploader
from tests.support import call_extension, last_seen, wait_until

HOST = "green-1"
DEST = Path("/srv/shipyard-podman")


def offline_agent_config(name: str) -> AgentConfig:
    """A config whose agent runs but reaches no server (it keeps retrying)."""
    return AgentConfig(
        endpoint="http://127.0.0.1:9",
        instance_name=name,
        access_key_id="AKIDEXAMPLE",
        secret_access_key="secret",
        host_identifier=f"arn:aws:iam::000000000000:user/{name}",
    )


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[PodmanProvisioner]:
    if shutil.which("podman") is None:
        service_missing("podman (Debian packages podman and runc)")
    provisioner = PodmanProvisioner(ProvisionerConfig("podman", tmp_path / "hosts"), timeout=30)
    try:
        yield provisioner
    finally:
        provisioner.teardown()
        assert not provisioner.run_root.exists()


@pytest.fixture(params=sorted(PROVISIONERS))
def provisioner(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provisioner]:
    if request.param == "podman":
        yield request.getfixturevalue("podman")
    else:
        yield get_provisioner(ProvisionerConfig(request.param, tmp_path / "hosts"))


# ---- the contract, on every kind ----------------------------------------------------------


def test_starts_lists_and_stops_hosts_idempotently(
    provisioner: Provisioner, tmp_path: Path
) -> None:
    home = tmp_path / "hosts" / HOST
    provisioner.start_host(HOST, offline_agent_config(HOST))
    assert provisioner.hosts() == [HOST]

    written = yaml.safe_load((home / "agent.yml").read_text())
    assert written["instance_name"] == HOST
    assert written["root_dir"] == str(home / "deployment-root")
    assert written["log_dir"] == str(home / "log")
    assert (home / "agent.yml").stat().st_mode & 0o777 == 0o600

    provisioner.start_host(HOST, offline_agent_config(HOST))  # running: nothing changes
    assert provisioner.hosts() == [HOST]

    provisioner.stop_host(HOST)
    assert provisioner.hosts() == []
    provisioner.stop_host(HOST)  # gone already: nothing to do
    assert provisioner.hosts() == []


def test_rejects_host_names_that_cannot_name_a_container(provisioner: Provisioner) -> None:
    for bad in ["", "../etc", "a/b", ".hidden", "x" * 64, "sp ace"]:
        with pytest.raises(ProvisionError, match="invalid host name"):
            provisioner.start_host(bad, offline_agent_config("x"))
    assert provisioner.hosts() == []


def test_unknown_kind_is_a_provision_error(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"unknown provisioner kind 'ec2' \(known: memory"):
        get_provisioner(ProvisionerConfig("ec2", tmp_path))


def test_memory_provisioner_records_starts_and_stops(tmp_path: Path) -> None:
    memory = get_provisioner(ProvisionerConfig("memory", tmp_path))
    assert isinstance(memory, MemoryProvisioner)
    config = offline_agent_config("b")
    memory.start_host("b", config)
    memory.start_host("a", offline_agent_config("a"))
    memory.start_host("b", config)
    memory.stop_host("a")
    memory.stop_host("a")
    assert memory.calls == [("start", "b"), ("start", "a"), ("stop", "a")]
    assert memory.hosts() == ["b"]
    assert memory.agent_config("b") == config
    assert memory.agent_config("a") is None
    assert memory.config_path("b").is_file()


# ---- Podman -------------------------------------------------------------------------------


def test_podman_failures_are_one_readable_line(podman: PodmanProvisioner, tmp_path: Path) -> None:
    broken = PodmanProvisioner(
        ProvisionerConfig("podman", tmp_path / "hosts", python="/nonexistent/python3")
    )
    with pytest.raises(ProvisionError, match="/nonexistent/python3 is not an executable file"):
        broken.start_host(HOST, offline_agent_config(HOST))
    assert broken.hosts() == []

    with pytest.raises(ProvisionError, match="no such container"):
        podman.read_file("blue-9", "/etc/hostname")

    missing = PodmanProvisioner(ProvisionerConfig("podman", tmp_path), podman="/nonexistent/pm")
    with pytest.raises(ProvisionError, match="install the Debian packages podman and runc"):
        missing.hosts()


APPSPEC = f"""version: 0.0
os: linux
files:
  - source: index.html
    destination: {DEST}/www
hooks:
  AfterInstall:
    - location: where.sh
      timeout: 30
"""
WHERE = f"#!/bin/sh\nhostname > {DEST}/hook-ran-on\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path / "server")


def register(server: LiveServer, cd: Any, name: str) -> AgentConfig:
    cd.register_on_premises_instance(
        instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
    )
    cd.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "fleet", "Value": "green"}]
    )
    keys = call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    return AgentConfig(
        endpoint=server.url,
        instance_name=name,
        access_key_id=keys["accessKeyId"],
        secret_access_key=keys["secretAccessKey"],
        host_identifier=keys["hostIdentifier"],
        poll_seconds=5.0,
    )


def test_a_podman_host_takes_an_in_place_deployment(
    podman: PodmanProvisioner, server: LiveServer
) -> None:
    cd = server.client("codedeploy")
    config = register(server, cd, HOST)
    started = time.monotonic()
    podman.start_host(HOST, config)
    start_seconds = time.monotonic() - started
    assert podman.hosts() == [HOST]
    assert start_seconds < 10, start_seconds  # a container, not a machine
    wait_until(lambda: last_seen(server, HOST), "the agent in the container to poll", 20)

    cd.create_application(applicationName="site", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="site",
        deploymentGroupName="green",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": "fleet", "Value": "green", "Type": "KEY_AND_VALUE"}],
    )
    bundle = make_bundle(
        {"appspec.yml": APPSPEC, "index.html": "<h1>green</h1>", "where.sh": WHERE}
    )
    revision = make_uploader(server)("site/v1.zip", bundle)
    deployment_id = cd.create_deployment(
        applicationName="site", deploymentGroupName="green", revision=revision
    )["deploymentId"]

    def finished() -> dict[str, str] | None:
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None

    info = wait_until(finished, "the deployment to finish", 30)
    assert info["status"] == "Succeeded", (info, podman.logs(HOST))

    # Installed inside the container's overlay, by its own agent and hook: not here.
    assert podman.read_file(HOST, f"{DEST}/www/index.html") == "<h1>green</h1>"
    assert podman.read_file(HOST, f"{DEST}/hook-ran-on") == f"{HOST}\n"
    assert not (DEST / "www" / "index.html").exists()
    # The host's own directory is shared with this machine: its agent log is readable here.
    agent_log = podman.work_dir / HOST / "log" / "shipyard-agent.log"
    assert f"agent started: instance {HOST}" in agent_log.read_text()

    podman.start_host(HOST, config)  # running: the same container, its overlay intact
    assert podman.read_file(HOST, f"{DEST}/www/index.html") == "<h1>green</h1>"

    podman.stop_host(HOST)
    assert podman.hosts() == []
    podman.stop_host(HOST)
    with pytest.raises(ProvisionError, match="no such container"):
        podman.read_file(HOST, f"{DEST}/www/index.html")
