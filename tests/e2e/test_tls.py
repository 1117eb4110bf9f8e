"""The server over HTTPS with a self-signed certificate: boto3 trusting it explicitly,
and an agent whose config names it as its CA file, through a whole deployment (the
agent's API calls and its bundle download both go over TLS)."""

from __future__ import annotations

import gc
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import SSLError

from tests.e2e.conftest import SHARED_ROOT, Fleet, fleet_on_server, make_bundle, make_uploader
from tests.e2e.test_failures import event_of
from tests.e2e.test_in_place import deploy
from tests.support import call_extension


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_fleet(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[Fleet]:
    """A fleet on a server over HTTPS whose API calls trust its self-signed certificate,
    and whose agents are configured with it as their CA file."""
    cert, key = certificate
    try:
        for fleet in fleet_on_server(tmp_path, tls_cert=str(cert), tls_key=str(key)):
            fleet.cafile = cert
            yield fleet
    finally:
        # asyncio's TLS layer (CPython 3.11) can leave the transport of a handshake the
        # client gave up on (the untrusted certificate above) unclosed once the server's
        # loop has stopped. Finalise it here, quietly, rather than as an unraisable
        # ResourceWarning in whichever test the garbage collector next runs in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_api_over_https_needs_the_certificate_trusted(tls_fleet: Fleet) -> None:
    server = tls_fleet.server
    assert server.url.startswith("https://127.0.0.1:")
    # Not trusted by default: the certificate is self-signed.
    with pytest.raises(SSLError):
        server.client("codedeploy").list_applications()
    cd = tls_fleet.cd
    cd.create_application(applicationName="secure")
    assert cd.list_applications()["applications"] == ["secure"]


def test_agent_with_ca_file_deploys_over_https(tls_fleet: Fleet) -> None:
    tls_fleet.add_hosts(["tls-1"], {"role": "web"})
    agent_config = yaml.safe_load(tls_fleet.host("tls-1").config_path.read_text())
    assert agent_config["endpoint"] == tls_fleet.server.url
    assert agent_config["ca_file"] == str(tls_fleet.cafile)

    cd = tls_fleet.cd
    cd.create_application(applicationName="shop", computePlatform="Server")
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    upload = make_uploader(tls_fleet.server, verify=str(tls_fleet.cafile))
    bundle = make_bundle(
        {
            "appspec.yml": (
                "version: 0.0\nos: linux\nfiles:\n"
                f"  - source: site\n    destination: {SHARED_ROOT}/tls-www\n"
                "hooks:\n  ValidateService:\n    - location: scripts/check.sh\n"
            ),
            "site/index.html": "served after a TLS deployment",
            "scripts/check.sh": f"#!/bin/sh\ncat {SHARED_ROOT}/tls-www/index.html\n",
        }
    )
    info = deploy(tls_fleet, upload("shop/tls.zip", bundle))
    assert info["status"] == "Succeeded", info

    target = tls_fleet.targets(info["deploymentId"])["tls-1"]
    assert target["status"] == "Succeeded"
    assert event_of(target, "DownloadBundle")["status"] == "Succeeded"
    page = tls_fleet.host("tls-1").view(SHARED_ROOT / "tls-www" / "index.html")
    assert page.read_text() == "served after a TLS deployment"
    logs = call_extension(
        tls_fleet.server,
        "ShipyardGetLifecycleEventLog",
        {"deploymentId": info["deploymentId"], "targetId": "tls-1"},
        cafile=tls_fleet.cafile,
    )
    by_event = {e["lifecycleEventName"]: e["log"] for e in logs["events"]}
    assert "[stdout]served after a TLS deployment" in by_event["ValidateService"]
