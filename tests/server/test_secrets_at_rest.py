"""Secrets at rest (issue 10, finding 3): a local user who can read the server's files, or
anyone who reads the database, finds no secret key in it; an install from before
encryption is converted as it starts and keeps working.

The attack: read the database file byte for byte (SQLite) or every row through a
connection of its own (PostgreSQL), and look for each secret the server handed out.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from shipyard.agent.client import CommandClient, ProtocolError
from shipyard.bundlestore.urls import bundle_url
from shipyard.config import AgentConfig, ConfigError, ServerConfig
from shipyard.secretbox import AesGcmBox, SecretBoxError, encode_key, new_key
from shipyard.server.main import build_services
from shipyard.store import credentials, deliveries, schema
from shipyard.store.migrations import MIGRATIONS
from tests.conftest import LiveServer, start_live_server
from tests.support import call_extension

ARN = "arn:aws:iam::000000000000:user/secret-host"
live = contextlib.contextmanager(start_live_server)


def stored_bytes(server: LiveServer, db_url: str) -> bytes:
    """Everything the database holds, read the way an intruder would: the SQLite files
    themselves, or every PostgreSQL row through a connection of one's own."""
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    import psycopg

    dumped = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table in schema.metadata.sorted_tables:
            rows = conn.execute(f"SELECT row_to_json(t)::text FROM {table.name} t").fetchall()
            dumped.extend(row[0] for row in rows)
    assert dumped  # the connection did read rows
    return "\n".join(dumped).encode()


def register(server: LiveServer, name: str = "secret-host") -> dict[str, Any]:
    server.client().register_on_premises_instance(instanceName=name, iamUserArn=ARN)
    return call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})


def trigger_secret(server: LiveServer) -> str:
    cd = server.client()
    cd.create_application(applicationName="app")
    cd.create_deployment_group(
        applicationName="app",
        deploymentGroupName="group",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        triggerConfigurations=[
            {
                "triggerName": "hook",
                "triggerTargetArn": "http://127.0.0.1:9/",
                "triggerEvents": ["DeploymentSuccess"],
            }
        ],
    )
    body = {"applicationName": "app", "deploymentGroupName": "group", "triggerName": "hook"}
    return str(call_extension(server, "ShipyardGetTriggerSecret", body)["secret"])


def internal_secret(server: LiveServer) -> str:
    bundle_url(server.services, {"bucket": "b", "key": "k"})  # issues the bundle-reader key
    with server.services.db.tx() as conn:
        found = credentials.oldest_key(
            conn, server.services.db.secret_box, "internal", "bundle-reader"
        )
    assert found is not None
    return found[1]


def test_no_secret_is_stored_in_plaintext(tmp_path: Path, db_url: str) -> None:
    with live(tmp_path / "server", database=db_url) as server:
        issued = register(server)
        secrets = {
            "admin": server.secret_access_key,
            "instance": issued["secretAccessKey"],
            "trigger": trigger_secret(server),
            "bundle-reader": internal_secret(server),
        }
        dump = stored_bytes(server, db_url)
        assert server.access_key_id.encode() in dump  # the key id is public and stored as is
        for what, secret in secrets.items():
            assert secret.encode() not in dump, f"the {what} secret is stored in plaintext"
        # ...and every one of them still works.
        assert server.client().list_applications()["applications"] == ["app"]
        assert trigger_secret_again(server) == secrets["trigger"]
        agent = CommandClient(
            AgentConfig(
                endpoint=server.url,
                instance_name="secret-host",
                access_key_id=issued["accessKeyId"],
                secret_access_key=issued["secretAccessKey"],
                host_identifier=issued["hostIdentifier"],
                poll_seconds=0.0,
            )
        )
        assert agent.poll_host_command() is None  # signed with the instance key: accepted
        # Nothing is cached: a revoked key fails on its very next request.
        server.client().deregister_on_premises_instance(instanceName="secret-host")
        with pytest.raises(ProtocolError) as info:
            agent.poll_host_command()
        assert info.value.code == "UnrecognizedClientException"
        agent.close()


def trigger_secret_again(server: LiveServer) -> str:
    body = {"applicationName": "app", "deploymentGroupName": "group", "triggerName": "hook"}
    return str(call_extension(server, "ShipyardGetTriggerSecret", body)["secret"])


def modes(data_dir: Path) -> dict[str, int]:
    """The data dir's mode and those of the files in it (a directory under the private
    data dir is out of other users' reach whatever its own mode)."""
    found = {".": stat.S_IMODE(data_dir.stat().st_mode)}
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(root) / name
            found[str(path.relative_to(data_dir))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def open_to_others(found: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in found.items() if mode & 0o077}


def test_the_data_dir_is_private_and_an_open_one_is_closed_on_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "server"
    with live(data_dir) as server:
        s3 = server.client("s3")
        s3.create_bucket(Bucket="bundles")
        s3.put_object(Bucket="bundles", Key="app/v1.zip", Body=b"bundle")
        found = modes(data_dir)
        for name in ("shipyard.db", "credentials", "secret.key"):
            assert found[name] == 0o600, name
        assert found["."] == 0o700
        assert any(name.startswith("bundles/") for name in found)
        assert open_to_others(found) == {}
    # An install from before this rule: everything readable by all (umask 022).
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert open_to_others(modes(data_dir))
    with live(data_dir) as server:
        assert open_to_others(modes(data_dir)) == {}
        body = server.client("s3").get_object(Bucket="bundles", Key="app/v1.zip")["Body"]
        assert body.read() == b"bundle"


def old_install(data_dir: Path, db_url: str) -> dict[str, str]:
    """A database as Shipyard wrote it before secrets were encrypted (schema version 1,
    plaintext secrets) and its credentials file; the secrets it holds."""
    data_dir.mkdir(mode=0o755)
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    plain = {"admin": "A" * 40, "instance": "I" * 40, "trigger": "t" * 64}
    with engine.begin() as conn:
        MIGRATIONS[0](conn, AesGcmBox([new_key()]))  # v1 ignores the box
        conn.execute(schema.meta.insert().values(key="schema_version", value="1"))
        for key_id, kind, name in [
            ("AKSYOLDADMIN0000000", "admin", "admin"),
            ("AKSIOLDHOST00000000", "instance", "old-host"),
        ]:
            conn.execute(
                schema.credentials.insert().values(
                    access_key_id=key_id,
                    secret_access_key=plain[kind],
                    principal_type=kind,
                    principal_name=name,
                    created=time.time(),
                )
            )
        conn.execute(
            schema.resource_tags.insert().values(
                arn=deliveries.secret_arn("group-id"), key="hook", value=plain["trigger"]
            )
        )
    engine.dispose()
    parser = configparser.ConfigParser()
    parser["default"] = {
        "aws_access_key_id": "AKSYOLDADMIN0000000",
        "aws_secret_access_key": plain["admin"],
        "region": "us-east-1",
    }
    with (data_dir / "credentials").open("w") as out:
        parser.write(out)
    return plain


def test_a_plaintext_install_is_sealed_on_start_and_keeps_working(
    tmp_path: Path, db_url: str
) -> None:
    data_dir = tmp_path / "server"
    plain = old_install(data_dir, db_url)
    with live(data_dir, database=db_url) as server:
        assert server.secret_access_key == plain["admin"]  # the old credentials file
        assert server.client().list_applications()["applications"] == []
        dump = stored_bytes(server, db_url)
        for what, secret in plain.items():
            assert secret.encode() not in dump, f"the old {what} secret is still in plaintext"
        box = server.services.db.secret_box
        with server.services.db.tx() as conn:
            found = credentials.lookup_key(conn, box, "AKSIOLDHOST00000000")
            trigger = deliveries.get_secret(conn, box, "group-id", "hook")
        assert found == (plain["instance"], "instance", "old-host", "")
        assert trigger == plain["trigger"]


def test_a_database_refuses_a_key_it_was_not_sealed_with(tmp_path: Path, db_url: str) -> None:
    data_dir = tmp_path / "server"
    with live(data_dir, database=db_url):
        pass
    (data_dir / "secret.key").unlink()  # lost: the server would make a new one
    with pytest.raises(ConfigError, match="secret key does not match this database"):
        build_services(ServerConfig(data_dir=data_dir, database=db_url))


def test_a_rotated_key_reseals_every_secret_and_the_old_key_can_go(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("TEST_SHIPYARD_KEYS", encode_key(old))
    data_dir = tmp_path / "server"
    setting = {"database": db_url, "secret_keys": "env:TEST_SHIPYARD_KEYS"}
    with live(data_dir, **setting) as server:
        admin = (server.access_key_id, server.secret_access_key)
        trigger = trigger_secret(server)
    assert not (data_dir / "secret.key").exists()  # the key lives in the environment only
    monkeypatch.setenv("TEST_SHIPYARD_KEYS", f"{encode_key(new)},{encode_key(old)}")
    with live(data_dir, **setting):
        pass  # the start re-seals under the new key
    monkeypatch.setenv("TEST_SHIPYARD_KEYS", encode_key(new))
    with live(data_dir, **setting) as server:
        assert (server.access_key_id, server.secret_access_key) == admin
        assert trigger_secret_again(server) == trigger
        with server.services.db.tx() as conn:
            stored = conn.execute(select(schema.credentials.c.secret_access_key)).scalars()
            assert all(server.services.db.secret_box.is_current(value) for value in stored)


def test_a_sealed_secret_opens_only_with_its_key_and_in_its_place() -> None:
    box = AesGcmBox([new_key()])
    token = box.seal("s3cr3t", "credentials/AKSI1")
    assert "s3cr3t" not in token and box.open(token, "credentials/AKSI1") == "s3cr3t"
    with pytest.raises(SecretBoxError):
        box.open(token, "credentials/AKSI2")  # copied onto another row
    with pytest.raises(SecretBoxError):
        AesGcmBox([new_key()]).open(token, "credentials/AKSI1")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SecretBoxError):
        box.open(tampered, "credentials/AKSI1")
