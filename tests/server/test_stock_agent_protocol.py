# ruff: noqa: F811
"""What the stock CodeDeploy agent gets from the command service: a PKCS7/JSON
specification signed by the server's own key (Shipyard's agent asks for TEXT/JSON),
and the same operations under the "secure" service of ``:enable_auth_policy: true``.

The stock agent itself runs against a server in tests/e2e/test_stock_agent.py; here its
checks are replayed with ``openssl`` (``smime -verify -noverify``, which is what its
``verify([], store, nil, NOVERIFY)`` does).
"""

from __future__ import annotations

import json
import ssl
import stat
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from shipyard.agent.client import CommandClient
from shipyard.server import spec_signing
from tests.conftest import LiveServer

# The server and a registered host in a group of its own, as the extension tests use them
# (the fixtures' names come back as test parameters, hence F811 is off for this file).
from tests.server.test_handed_commands import _deploy, host  # noqa: F401
from tests.support import raw_call


def _envelope(answer: dict[str, Any]) -> dict[str, str]:
    assert answer["DeploymentSystem"] == "CodeDeploy"
    envelope: dict[str, str] = answer["DeploymentSpecification"]["GenericEnvelope"]
    return envelope


def _signed_content(pem: str, tmp_path: Path) -> bytes:
    """The content of a PEM PKCS#7 message, its signature checked with the certificate
    it carries and no chain (the stock agent's NOVERIFY)."""
    message = tmp_path / "spec.p7"
    message.write_text(pem)
    verified = subprocess.run(
        ["openssl", "smime", "-verify", "-noverify", "-inform", "PEM", "-in", str(message)],
        capture_output=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    return verified.stdout


def test_stock_agents_get_a_signed_specification(
    server: LiveServer,
    host: CommandClient,
    tmp_path: Path,
) -> None:
    deployment_id = _deploy(server, host._config.instance_name)
    command = host.poll_host_command()
    assert command is not None
    stock_body = {"DeploymentExecutionId": command.execution_id, "HostIdentifier": host_arn(host)}
    signed = _envelope(host.call("GetDeploymentSpecification", stock_body))
    plain = _envelope(
        host.call("GetDeploymentSpecification", {**stock_body, "ShipyardSpecification": True})
    )

    assert plain["Format"] == "TEXT/JSON"
    assert json.loads(plain["Payload"])["DeploymentId"] == deployment_id
    assert signed["Format"] == "PKCS7/JSON"
    assert signed["Payload"].startswith("-----BEGIN PKCS7-----")
    assert _signed_content(signed["Payload"], tmp_path) == plain["Payload"].encode()
    # Signed by the key and certificate the server made in its data dir.
    carried = pkcs7.load_pem_pkcs7_certificates(signed["Payload"].encode())
    kept = x509.load_pem_x509_certificate((server.data_dir / spec_signing.CERT_FILE).read_bytes())
    assert carried == [kept]
    # Content changed in transit no longer verifies.
    der = ssl.PEM_cert_to_DER_cert(signed["Payload"].replace("PKCS7", "CERTIFICATE"))
    assert b'"DeploymentId"' in der
    forged = der.replace(b'"DeploymentId"', b'"DeploymentIx"')
    (tmp_path / "forged.p7").write_bytes(forged)
    rejected = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            tmp_path / "forged.p7",
        ],
        capture_output=True,
        check=False,
    )
    assert rejected.returncode != 0
    assert b"signature failure" in rejected.stderr


def test_a_malformed_format_request_is_refused(
    server: LiveServer,
    host: CommandClient,
) -> None:
    _deploy(server, host._config.instance_name)
    command = host.poll_host_command()
    assert command is not None
    body = {
        "DeploymentExecutionId": command.execution_id,
        "HostIdentifier": host_arn(host),
        "ShipyardSpecification": "yes",
    }
    status, answer = _raw_call(server, host, "CodeDeployCommandService_v20141006", body)
    assert status == 400
    assert answer["__type"] == "ClientException"
    assert "ShipyardSpecification" in answer["message"]


def test_the_secure_command_service_answers(
    server: LiveServer,
    host: CommandClient,
) -> None:
    """``:enable_auth_policy: true``: target prefix CodeDeployCommandService, signing
    name codedeploy-commands-secure, the same operations."""
    deployment_id = _deploy(server, host._config.instance_name)
    body = {"HostIdentifier": host_arn(host)}
    status, answer = _raw_call(
        server, host, "CodeDeployCommandService", body, "PollHostCommand", secure=True
    )
    assert status == 200, answer
    command = answer["HostCommand"]
    assert command["DeploymentExecutionId"].startswith(deployment_id)
    spec_body = {"DeploymentExecutionId": command["DeploymentExecutionId"], **body}
    status, answer = _raw_call(server, host, "CodeDeployCommandService", spec_body, secure=True)
    assert status == 200, answer
    assert _envelope(answer)["Format"] == "PKCS7/JSON"
    status, answer = _raw_call(server, host, "CodeDeployCommandService", body, "NoSuchOperation")
    assert (status, answer["__type"]) == (400, "UnknownOperationException")


def test_the_signing_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = spec_signing.load_or_create(tmp_path, 1_800_000_000.0)
    key_file = tmp_path / spec_signing.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = spec_signing.load_or_create(tmp_path, 1_900_000_000.0)
    assert again.certificate == first.certificate
    assert again.sign(b"{}").startswith("-----BEGIN PKCS7-----")
    assert not list(tmp_path.glob("*.partial"))


def host_arn(client: CommandClient) -> str:
    return client._config.host_identifier


def _raw_call(
    live: LiveServer,
    client: CommandClient,
    prefix: str,
    body: dict[str, Any],
    operation: str = "GetDeploymentSpecification",
    *,
    secure: bool = False,
) -> tuple[int, dict[str, Any]]:
    """One command service call signed here with the instance's keys."""
    config = client._config
    return raw_call(
        live,
        operation,
        body,
        target_prefix=prefix,
        service="codedeploy-commands-secure" if secure else "codedeploy-commands",
        keys=(config.access_key_id, config.secret_access_key),
    )
