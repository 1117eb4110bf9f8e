"""The agent's SigV4 signing (built-in SHA-256, hand-rolled HMAC) against the references:
the stdlib's ``hmac`` and botocore's signer."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shipyard import sigv4

KEY_ID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
def test_hmac_sha256_matches_the_stdlib(key_length: int) -> None:
    key = bytes(range(256))[:key_length]
    for message in (b"", b"abc", bytes(1000)):
        expected = hmac.new(key, message, hashlib.sha256).digest()
        assert sigv4.hmac_sha256(key, message) == expected
    assert sigv4.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


def botocore_signed(body: bytes, headers: dict[str, str]) -> dict[str, str]:
    request = AWSRequest(method="POST", url="http://127.0.0.1:8080/", data=body, headers=headers)
    SigV4Auth(Credentials(KEY_ID, SECRET), "codedeploy-commands", "eu-west-3").add_auth(request)
    return dict(request.headers.items())


def test_sign_headers_agrees_with_botocore_and_verify_accepts_it() -> None:
    body = b'{"HostIdentifier":"arn:aws:iam::000000000000:user/web-1"}'
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodeDeployCommandService_v20141006.PollHostCommand",
    }
    reference = botocore_signed(body, headers)
    ours = sigv4.sign_headers(
        sigv4.Credentials(KEY_ID, SECRET),
        method="POST",
        host="127.0.0.1:8080",
        path="/",
        body=body,
        headers=headers,
        region="eu-west-3",
        service="codedeploy-commands",
        amz_date=reference["X-Amz-Date"],
    )
    assert ours["Authorization"] == reference["Authorization"]

    auth = sigv4.parse_authorization(reference["Authorization"])
    lowered = {k.lower(): v for k, v in reference.items()} | {"host": "127.0.0.1:8080"}

    def verify(secret: str, payload: bytes) -> bool:
        return sigv4.verify(
            auth,
            secret,
            method="POST",
            path="/",
            query=[],
            headers=lowered,
            payload_hash=sigv4.sha256_hex(payload),
            amz_date=reference["X-Amz-Date"],
        )

    assert verify(SECRET, body)
    assert not verify(SECRET, body + b" ")
    assert not verify("another secret", body)


@pytest.mark.parametrize(
    ("path", "target", "extra"),
    [
        ("/", "CodeDeployCommandService_v20141006.PollHostCommand", {}),
        ("/a path/x", "  spaced   target ", {"X-Extra": "one  two"}),
    ],
)
def test_the_preset_signer_signs_as_sign_headers_does(
    path: str, target: str, extra: dict[str, str]
) -> None:
    creds = sigv4.Credentials(KEY_ID, SECRET)
    fixed = {"Content-Type": "application/x-amz-json-1.1", **extra}
    signer = sigv4.PresetSigner(
        creds,
        method="POST",
        host="127.0.0.1:8080",
        path=path,
        headers=fixed,
        varying=["X-Amz-Target"],
        region="eu-west-3",
        service="codedeploy-commands",
    )
    for body, amz_date in ((b"{}", "20261205T235959Z"), (b'{"a":1}', "20261206T000001Z")):
        expected = sigv4.sign_headers(
            creds,
            method="POST",
            host="127.0.0.1:8080",
            path=path,
            body=body,
            headers={**fixed, "X-Amz-Target": target},
            region="eu-west-3",
            service="codedeploy-commands",
            amz_date=amz_date,
        )
        assert signer.sign(body, amz_date, {"X-Amz-Target": target}) == expected
    with pytest.raises(ValueError, match="expected the headers"):
        signer.sign(b"{}", "20261205T235959Z", {})
