"""``shipyard demo``: a whole deployment on this machine, start to finish.

An embedded server on SQLite, three local hosts whose agents each have their own
filesystem view of /srv/shipyard-demo, the sample web app in ``app/`` pushed
to the built-in bundle store and deployed one host at a time, with live progress
and the final per-host report on screen.
"""

from __future__ import annotations

import argparse
import configparser
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from shipyard.cli import following, progress
from shipyard.cli.client import CliError, ShipyardClient
from shipyard.cli.pack import write_zip
from shipyard.config import ServerConfig
from shipyard.demo.fleet import LocalHost, can_isolate, prepare_host, stop_all
from shipyard.server.main import start_embedded

APP_SOURCE = Path(__file__).parent / "app"
SHARED_PATH = Path("/srv/shipyard-demo")
APPLICATION = "ShipyardDemo"
GROUP = "web"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def _client(url: str, credentials_path: Path) -> ShipyardClient:
    parser = configparser.ConfigParser()
    parser.read(credentials_path)
    session = boto3.Session(
        aws_access_key_id=parser["default"]["aws_access_key_id"],
        aws_secret_access_key=parser["default"]["aws_secret_access_key"],
        region_name="us-east-1",
    )
    return ShipyardClient(url, "us-east-1", session)


def _register_hosts(client: ShipyardClient, base: Path, url: str, count: int) -> list[LocalHost]:
    hosts = []
    for number in range(1, count + 1):
        name = f"web-{number}"
        client.api(
            "RegisterOnPremisesInstance",
            instanceName=name,
            iamUserArn=f"arn:aws:iam::000000000000:user/shipyard/{name}",
        )
        client.api(
            "AddTagsToOnPremisesInstances",
            instanceNames=[name],
            tags=[{"Key": "role", "Value": "web"}],
        )
        creds = client.call_extension("ShipyardIssueInstanceCredentials", {"instanceName": name})
        host = prepare_host(
            base,
            name,
            url,
            (creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]),
            [SHARED_PATH],
            isolate=True,
        )
        host.start()
        hosts.append(host)
    return hosts


def _push_sample_app(client: ShipyardClient, work: Path) -> dict[str, Any]:
    archive = work / "demo-app.zip"
    write_zip(APP_SOURCE, archive)
    client.ensure_bucket("shipyard-demo")
    uploaded = client.upload(archive, "shipyard-demo", "webapp/v1.zip")
    location: dict[str, Any] = {
        "bucket": "shipyard-demo",
        "key": "webapp/v1.zip",
        "bundleType": "zip",
        "eTag": uploaded["eTag"],
    }
    revision = {"revisionType": "S3", "s3Location": location}
    client.api(
        "RegisterApplicationRevision",
        applicationName=APPLICATION,
        revision=revision,
        description="Shipyard demo web app",
    )
    return revision


def run(work: Path, host_count: int) -> int:
    config = ServerConfig(data_dir=work / "server", port=_free_port())
    _say(f"starting an embedded Shipyard server on {config.url} (SQLite in {config.data_dir})")
    server = start_embedded(config)
    hosts: list[LocalHost] = []
    try:
        client = _client(server.url, server.credentials_path)
        client.api("CreateApplication", applicationName=APPLICATION, computePlatform="Server")
        _say(f"registering {host_count} local hosts, each with its own view of {SHARED_PATH}")
        hosts = _register_hosts(client, work / "hosts", server.url, host_count)
        client.api(
            "CreateDeploymentGroup",
            applicationName=APPLICATION,
            deploymentGroupName=GROUP,
            serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
            deploymentConfigName="CodeDeployDefault.OneAtATime",
            onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
        )
        _say("pushing the sample web app to the built-in bundle store")
        revision = _push_sample_app(client, work)
        _say("deploying it one host at a time")
        started = time.monotonic()
        deployment_id = client.api(
            "CreateDeployment",
            applicationName=APPLICATION,
            deploymentGroupName=GROUP,
            revision=revision,
            description="shipyard demo",
        )["deploymentId"]
        deployment, targets = following.follow(client, deployment_id, sys.stdout)
        elapsed = time.monotonic() - started
        for line in progress.final_report(deployment, targets, time.time()):
            print(line)
        print()
        _say(f"finished in {elapsed:.2f} s; what each host now serves:")
        for host in hosts:
            page = host.view(SHARED_PATH / "www" / "index.html")
            title = (
                next((ln for ln in page.read_text().splitlines() if "<h1>" in ln), "(no page)")
                if page.exists()
                else "(no page)"
            )
            print(f"    {host.name}: {page}  {title.strip()}")
        _say(f"the hook output of {hosts[0].name}, as `shipyard logs` shows it:")
        logs = client.call_extension(
            "ShipyardGetLifecycleEventLog",
            {"deploymentId": deployment_id, "targetId": hosts[0].name},
        )
        for event in logs["events"]:
            for line in event["log"].splitlines():
                print(f"    {line}")
        return 0 if deployment.get("status") == "Succeeded" else 1
    finally:
        stop_all(hosts)
        server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="shipyard demo", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=3, help="number of local hosts (default 3)")
    parser.add_argument("--workdir", type=Path, help="keep everything here instead of a temp dir")
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 50:
        raise CliError("--hosts must be between 1 and 50", 2)
    if not can_isolate():
        raise CliError(
            "the demo gives each host its own filesystem view with `unshare --mount`, "
            "which needs root here; run it as root (e.g. with sudo)"
        )
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args.workdir.resolve(), args.hosts)
    with tempfile.TemporaryDirectory(prefix="shipyard-demo-") as tmp:
        return run(Path(tmp), args.hosts)
