"""GET /healthz, /readyz and /metrics on a live server (and /metrics on its own address)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shipyard.server.probes import Alive
from tests.conftest import PG_ADMIN_URL, LiveServer, free_port, start_live_server
from tests.support import wait_until


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def signed_get(
    server: LiveServer, path: str, keys: tuple[str, str] | None = None
) -> tuple[int, str]:
    url = server.url + path
    request = AWSRequest(method="GET", url=url)
    creds = Credentials(*(keys or (server.access_key_id, server.secret_access_key)))
    S3SigV4Auth(creds, "s3", server.region).add_auth(request)
    return get(url, dict(request.headers))


def test_healthz_and_readyz_answer_fast_without_a_key(live_server: LiveServer) -> None:
    assert get(live_server.url + "/healthz") == (200, "ok\n")
    status, body = get(live_server.url + "/readyz")
    assert (status, body) == (200, '{"ready":true}')
    started = time.perf_counter()
    for _ in range(20):
        assert get(live_server.url + "/readyz")[0] == 200
    assert (time.perf_counter() - started) / 20 < 0.05  # well inside the 10 ms goal's order


def test_metrics_needs_a_key_and_counts_api_requests(live_server: LiveServer) -> None:
    status, body = get(live_server.url + "/metrics")
    assert status == 401 and "bearer token or a signed request" in body
    assert get(live_server.url + "/metrics", {"authorization": "Bearer guess"})[0] == 401
    live_server.client().list_applications()
    with pytest.raises(Exception, match="ApplicationDoesNotExistException"):
        live_server.client().get_application(applicationName="nope")
    status, text = signed_get(live_server, "/metrics")
    assert status == 200
    assert 'shipyard_api_requests_total{operation="ListApplications",result="ok"} 1.0' in text
    assert (
        'shipyard_api_requests_total{operation="GetApplication",'
        'result="ApplicationDoesNotExistException"} 1.0'
    ) in text
    assert 'shipyard_api_request_duration_seconds_count{operation="ListApplications"} 1.0' in text
    assert "shipyard_open_long_polls 0.0" in text
    assert 'shipyard_agents{state="silent"} 0.0' in text
    # A wrong secret signs nothing.
    assert signed_get(live_server, "/metrics", (live_server.access_key_id, "x" * 40))[0] == 401


def test_metrics_with_a_bearer_token(tmp_path: Path) -> None:
    for server in start_live_server(tmp_path / "server", metrics_token="s3cret-token"):
        status, text = get(server.url + "/metrics", {"authorization": "Bearer s3cret-token"})
        assert status == 200 and "shipyard_deployments_in_progress" in text
        assert get(server.url + "/metrics", {"authorization": "Bearer s3cret-tokeN"})[0] == 401


def test_metrics_on_a_separate_address(tmp_path: Path) -> None:
    port = free_port()
    for server in start_live_server(tmp_path / "server", metrics_address=f"127.0.0.1:{port}"):
        wait_until(lambda: get(f"http://127.0.0.1:{port}/metrics")[0] == 200, "the listener", 10)
        _, text = get(f"http://127.0.0.1:{port}/metrics")
        assert "shipyard_agents" in text
        # Not on the main port, even with a signature.
        assert signed_get(server, "/metrics")[0] == 404
        assert get(server.url + "/readyz")[0] == 200
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_readyz_fails_while_the_database_is_down(tmp_path: Path, pg_url: str) -> None:
    for server in start_live_server(tmp_path / "server", pg_url):
        assert get(server.url + "/readyz")[0] == 200
        name = pg_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        status, body = get(server.url + "/readyz")
        assert status == 503
        assert '"database unreachable: OperationalError"' in body
        assert get(server.url + "/healthz")[0] == 200  # the process still answers
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        # Back, but empty: the schema is not this version's.
        status, body = get(server.url + "/readyz")
        assert status == 503 and "database schema at version 0" in body


class _StoppedWorker:
    """A worker whose background task has ended (crashed or stopped)."""

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def alive(self) -> bool:
        return False


def test_readyz_fails_while_a_worker_is_not_running(live_server: LiveServer) -> None:
    assert all(w.alive() for w in live_server.services.workers if isinstance(w, Alive))
    live_server.services.workers.append(_StoppedWorker())
    try:
        status, body = get(live_server.url + "/readyz")
        assert status == 503 and '"_StoppedWorker is not running"' in body
    finally:
        live_server.services.workers.pop()
    assert get(live_server.url + "/readyz")[0] == 200
