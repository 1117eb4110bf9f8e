"""Shared fixtures: databases (SQLite and PostgreSQL), a live server, boto3 clients."""

from __future__ import annotations

import configparser
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from shipyard.config import ServerConfig
from shipyard.server.context import Services
from shipyard.server.main import start_embedded

IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def service_missing(what: str) -> None:
    """Skip loudly on a laptop; fail under CI=true."""
    if IN_CI:
        pytest.fail(f"required service missing under CI: {what}")
    pytest.skip(f"service missing: {what}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import psycopg

    name = "shipyard_" + uuid.uuid4().hex[:12]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        service_missing(f"PostgreSQL at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """The database of the server a test starts: "" (the server's own SQLite file in its
    data directory); under ``on_both_databases``, that in one run and a fresh PostgreSQL
    database in another."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return str(request.getfixturevalue("pg_url"))


# Runs a test whose server (``live_server``, ``fleet``...) takes the ``database`` fixture
# twice: on SQLite and on PostgreSQL.
on_both_databases = pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    services: Services
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def client(self, service: str = "codedeploy", **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=BotoConfig(retries={"max_attempts": 0}, s3={"addressing_style": "path"}),
            **kwargs,
        )

    def cli_env(self) -> dict[str, str]:
        """Environment for running the AWS CLI against this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "credentials"),
            AWS_CONFIG_FILE=str(self.data_dir / "no-config"),
            AWS_DEFAULT_REGION=self.region,
            AWS_ENDPOINT_URL=self.url,
        )
        return env


def start_live_server(data_dir: Path, database: str = "", **overrides: Any) -> Iterator[LiveServer]:
    # Load balancers (HAProxy daemons) stop with a test's server unless it asks otherwise.
    overrides.setdefault("elb_keep_running", False)
    config = ServerConfig(data_dir=data_dir, port=free_port(), database=database, **overrides)
    embedded = start_embedded(config)
    parser = configparser.ConfigParser()
    parser.read(embedded.credentials_path)
    try:
        yield LiveServer(
            url=embedded.url,
            data_dir=data_dir,
            services=embedded.services,
            access_key_id=parser["default"]["aws_access_key_id"],
            secret_access_key=parser["default"]["aws_secret_access_key"],
        )
    finally:
        embedded.stop()


@pytest.fixture
def live_server(tmp_path: Path, database: str) -> Iterator[LiveServer]:
    """A real Shipyard server on an ephemeral loopback port (on SQLite, unless the test
    runs ``on_both_databases``)."""
    yield from start_live_server(tmp_path / "server", database)


@pytest.fixture
def codedeploy(live_server: LiveServer) -> Any:
    return live_server.client("codedeploy")
