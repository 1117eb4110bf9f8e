"""Finding 2 of issue 10: bodies are read only from authenticated senders, never beyond
their endpoint's cap, and checked against the signature.

The attack was unsigned 252 MiB bodies held in memory. Here each request announces such
a body and sends only its first bytes: an answer that arrives anyway proves the server
refused it without reading (or waiting for) the body, and the closed connection that it
will not read the rest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard import sigv4
from shipyard.config import ConfigError, ServerConfig, build
from tests.conftest import LiveServer, start_live_server
from tests.server.wire import AGENT, API, connect, post, read_answer, send_head, signed

HUGE = 252 * 1024**2
FIRST_BYTES = b"{" + b" " * 16 * 1024  # well within what the server buffers by itself
SMALL_CAP = 16 * 1024


@pytest.fixture
def small_caps(tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path / "server", max_api_body_bytes=SMALL_CAP, max_agent_body_bytes=SMALL_CAP
    )


def _unsigned(server: LiveServer, target: str) -> dict[str, str]:
    return {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}


def _unknown_key(server: LiveServer, target: str) -> dict[str, str]:
    stranger = sigv4.Credentials("AKIANOBODY0000000000", "guess")
    return signed(server, target, b"{}", creds=stranger)


@pytest.mark.parametrize("target", [API + "ListApplications", AGENT + "PollHostCommand"])
@pytest.mark.parametrize(
    ("sender", "error"),
    [
        (_unsigned, "MissingAuthenticationTokenException"),
        (_unknown_key, "UnrecognizedClientException"),
    ],
)
def test_a_huge_body_without_valid_keys_is_refused_before_it_is_read(
    live_server: LiveServer,
    target: str,
    sender: Callable[[LiveServer, str], dict[str, str]],
    error: str,
) -> None:
    answer = post(
        live_server, sender(live_server, target), FIRST_BYTES, content_length=HUGE, watch_close=True
    )
    assert (answer.status, answer.error) == (403, error)
    assert answer.closed is True


def test_a_signed_body_over_the_cap_is_refused_from_its_content_length(
    live_server: LiveServer,
) -> None:
    # A real key: the cap protects the server from its own clients too.
    headers = signed(live_server, API + "ListApplications", b"{}")
    answer = post(live_server, headers, FIRST_BYTES, content_length=HUGE, watch_close=True)
    assert answer.status == 413
    assert answer.error == "RequestEntityTooLargeException"
    assert answer.closed is True


@pytest.mark.parametrize("target", [API + "ListApplications", AGENT + "PollHostCommand"])
def test_a_chunked_body_is_cut_off_at_the_cap(small_caps: LiveServer, target: str) -> None:
    headers = signed(small_caps, target, b"{}")
    with connect(small_caps) as sock:
        send_head(sock, small_caps, {**headers, "Transfer-Encoding": "chunked"})
        piece = b" " * 4096
        try:
            for _ in range(SMALL_CAP // len(piece) + 2):  # past the cap; the body never ends
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading at the cap and has closed already
        answer = read_answer(sock, watch_close=True)
    assert (answer.status, answer.error) == (413, "RequestEntityTooLargeException")
    assert answer.closed is True


def test_bodies_under_the_cap_still_work(small_caps: LiveServer) -> None:
    codedeploy = small_caps.client()
    codedeploy.create_application(applicationName="fits")
    assert codedeploy.list_applications()["applications"] == ["fits"]


def test_a_body_swapped_under_a_signature_is_refused(live_server: LiveServer) -> None:
    """The signature covers the body's SHA-256: another body under it does nothing."""
    signed_body = json.dumps({"applicationName": "meant"}).encode()
    swapped = json.dumps({"applicationName": "evil"}).encode()
    headers = signed(live_server, API + "CreateApplication", signed_body)
    answer = post(live_server, headers, swapped)
    assert (answer.status, answer.error) == (403, "UnrecognizedClientException")
    assert live_server.client().list_applications()["applications"] == []


def test_a_declared_payload_hash_is_checked_against_the_body(live_server: LiveServer) -> None:
    signed_body = json.dumps({"applicationName": "meant"}).encode()
    declared = {"x-amz-content-sha256": hashlib.sha256(signed_body).hexdigest()}
    headers = signed(live_server, API + "CreateApplication", signed_body, extra=declared)
    swapped = json.dumps({"applicationName": "evil"}).encode()
    assert post(live_server, headers, swapped).status == 403
    assert post(live_server, headers, signed_body).status == 200
    assert live_server.client().list_applications()["applications"] == ["meant"]


def test_bundle_uploads_are_capped_at_the_s3_single_put_limit(tmp_path: Path) -> None:
    env = {"SHIPYARD_MAX_BUNDLE_BYTES": str(6 * 1024**3)}
    with pytest.raises(ConfigError, match="max_bundle_bytes"):
        build(ServerConfig, env=env, flags={"data_dir": tmp_path})
