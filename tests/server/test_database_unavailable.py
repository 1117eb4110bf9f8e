"""A server whose PostgreSQL goes away (a private server of the test's own, stopped and
started again): /readyz says so and the load balancer takes the replica out; requests
answer 503 ServiceUnavailableException, which clients and agents retry, not 500; once
the database is back, everything works again without a restart."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.e2e.cluster import PrivatePostgres
from tests.support import raw_call, wait_until


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    postgres = PrivatePostgres()
    try:
        postgres.init()
        yield postgres
    finally:
        postgres.destroy()


def _get(server: LiveServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def test_the_database_going_away_is_503_and_readyz_until_it_is_back(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    url = private_postgres.create_database("shipyard")
    for server in start_live_server(tmp_path / "server", url):
        assert raw_call(server, "ListApplications", {})[0] == 200
        assert _get(server, "/readyz")[0] == 200
        private_postgres.stop("immediate")
        status, answer = raw_call(server, "ListApplications", {})
        assert (status, answer["__type"]) == (503, "ServiceUnavailableException")
        status, body = _get(server, "/readyz")
        assert status == 503
        assert any("database unreachable" in r for r in json.loads(body)["reasons"])
        assert _get(server, "/healthz")[0] == 200  # the process itself is fine
        private_postgres.start()
        wait_until(lambda s=server: raw_call(s, "ListApplications", {})[0] == 200, "the database")
        assert _get(server, "/readyz")[0] == 200
