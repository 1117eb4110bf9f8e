"""A Shipyard cluster of its own: a private PostgreSQL server, moto's S3 server as the
shared bundle store, N replicas (real ``python -m shipyard server`` processes) and
HAProxy in front of them, everything on loopback ports picked at start.

Shared by tests/e2e/test_cluster.py and bench/cluster_soak.py.

- ``PrivatePostgres``: ``initdb`` and ``pg_ctl`` (Debian's postgresql packages) into a
  temporary directory, on a free port, run as the ``postgres`` user when the test runs
  as root; it may be restarted (``restart``) without touching the machine's own server.
- ``cluster(directory, replicas, settings)``: all of it; ``Cluster.front`` has what
  ``Fleet`` and the e2e helpers use of a ``LiveServer`` (url, keys, region, ``client``),
  pointing at HAProxy; ``Cluster.s3()`` is a client of the shared store.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from moto.server import ThreadedMotoServer

from shipyard.secretbox import encode_key, new_key
from tests.conftest import free_port, service_missing
from tests.e2e.conftest import SHARED_ROOT, make_bundle
from tests.e2e.test_server_crash import ServerProcess
from tests.traffic.haproxy_process import haproxy_binary, runtime_api_answers

S3_KEYS = ("moto", "moto")
BUCKET = "bundles"
HOOKS_LOG = SHARED_ROOT / "cluster-events.log"

HAPROXY_CONFIG = """\
global
    stats socket {directory}/admin.sock level admin
    maxconn 8000

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout check 5s

frontend fe
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /readyz
{servers}
"""
SERVER_LINE = "    server {name} 127.0.0.1:{port} check inter 300ms fall 5 rise 1"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        service_missing("PostgreSQL server binaries (Debian package postgresql)")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL server of the caller's own, in a temporary directory."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="shipyard-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            # fsync=off: a test's server is killed, never its machine (the page cache
            # keeps every commit); commits stay synchronous, as in production.
            "-c max_connections=400 -c fsync=off"
        )
        log = str(self.directory / "postgres.log")
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop at once (connections cut, as in a crash) and start again."""
        self.stop("immediate")
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def _s3_client(url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=S3_KEYS[0],
        aws_secret_access_key=S3_KEYS[1],
    )


def recording_bundle(version: str, hook_seconds: float) -> bytes:
    """Every hook appends "<event> <deployment id>" to the host's own HOOKS_LOG, then
    sleeps ``hook_seconds``."""
    hooks = "".join(
        f"  {event}:\n    - location: scripts/record.sh\n      timeout: 60\n"
        for event in ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart")
    )
    record = (
        f'#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID" >> {HOOKS_LOG}\nsleep {hook_seconds}\n'
    )
    appspec = f"version: 0.0\nos: linux\nhooks:\n{hooks}"
    return make_bundle(
        {"appspec.yml": appspec, "version.txt": version, "scripts/record.sh": record}
    )


@dataclass
class Front:
    """The cluster as clients and agents see it: HAProxy's address, replica 1's admin key."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    client = ServerProcess.client  # it uses only the url, the keys and the region


@dataclass
class Cluster:
    directory: Path
    postgres: PrivatePostgres
    database: str  # its name on ``postgres``
    s3_url: str
    replicas: list[ServerProcess]
    balancer: subprocess.Popen[bytes]
    front: Front
    killed: list[int] = field(default_factory=list)  # indexes of replicas killed

    def upload(self, key: str, data: bytes) -> dict[str, Any]:
        """Put a bundle in the shared store; its S3 revision."""
        etag = (
            _s3_client(self.s3_url).put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')
        )
        location = {"bucket": BUCKET, "key": key, "bundleType": "zip", "eTag": etag}
        return {"revisionType": "S3", "s3Location": location}

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.postgres.query(self.database, sql, *params)

    def live(self) -> list[int]:
        return [i for i in range(len(self.replicas)) if i not in self.killed]

    def holder(self, lease: str) -> int | None:
        """The index of the replica holding ``lease`` now, if a live one does."""
        rows = self.query("SELECT holder FROM leases WHERE name = %s", lease)
        if not rows:
            return None
        pid = int(str(rows[0][0]).split(":")[1])
        for index in self.live():
            process = self.replicas[index].process
            if process is not None and process.pid == pid:
                return index
        return None

    def kill(self, index: int) -> None:
        """kill -9 replica ``index``."""
        self.replicas[index].kill()
        self.killed.append(index)

    def restart(self, index: int) -> None:
        self.replicas[index].start()
        self.killed.remove(index)

    def memory(self) -> dict[int, int]:
        """Resident memory (KiB) of each live replica."""
        found = {}
        for index in self.live():
            process = self.replicas[index].process
            assert process is not None
            status = Path(f"/proc/{process.pid}/status").read_text()
            line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
            found[index] = int(line.split()[1])
        return found

    def logs(self) -> str:
        return "\n".join(f"--- replica {i + 1}:\n{r.output()}" for i, r in enumerate(self.replicas))


def _start_balancer(directory: Path, ports: Sequence[int], port: int) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    servers = "\n".join(
        SERVER_LINE.format(name=f"replica-{n}", port=p) for n, p in enumerate(ports, 1)
    )
    config = directory / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(directory=directory, port=port, servers=servers))
    with (directory / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [haproxy_binary(), "-f", str(config), "-db"], stdout=log, stderr=log
        )
    if not runtime_api_answers(f"unix:{directory / 'admin.sock'}", process):
        process.kill()
        raise RuntimeError(f"haproxy did not start: {(directory / 'haproxy.log').read_text()}")
    return process


@contextlib.contextmanager
def cluster(
    directory: Path, replicas: int = 3, settings: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """PostgreSQL, S3, ``replicas`` servers started at once on a fresh database (they
    migrate it together), and HAProxy in front, checking each replica's /readyz.
    ``settings`` are more SHIPYARD_* settings for every replica."""
    postgres = PrivatePostgres()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    processes: list[ServerProcess] = []
    balancer: subprocess.Popen[bytes] | None = None
    try:
        postgres.init()
        url = postgres.create_database("shipyard")
        s3.start()
        host, s3_port = s3.get_host_and_port()
        s3_url = f"http://{host}:{s3_port}"
        _s3_client(s3_url).create_bucket(Bucket=BUCKET)
        ports = [free_port() for _ in range(replicas)]
        front_port = free_port()
        shared = {
            "SECRET_KEYS": "env:SHIPYARD_CLUSTER_KEY",
            "CLUSTER_KEY": encode_key(new_key()),
            "S3_ENDPOINT": s3_url,
            "S3_ACCESS_KEY_ID": S3_KEYS[0],
            "S3_SECRET_ACCESS_KEY": S3_KEYS[1],
            "PUBLIC_URL": f"http://127.0.0.1:{front_port}",
            **(settings or {}),
        }
        for index, port in enumerate(ports, 1):
            replica = ServerProcess(directory / f"replica-{index}" / "data", url, settings=shared)
            replica.port, replica.url = port, f"http://127.0.0.1:{port}"
            replica.data_dir.parent.mkdir(parents=True)
            processes.append(replica)
        with ThreadPoolExecutor(replicas) as pool:
            list(pool.map(ServerProcess.start, processes))
        balancer = _start_balancer(directory / "haproxy", ports, front_port)
        front = Front(
            f"http://127.0.0.1:{front_port}",
            processes[0].access_key_id,
            processes[0].secret_access_key,
        )
        yield Cluster(directory, postgres, "shipyard", s3_url, processes, balancer, front)
    finally:
        if balancer is not None:
            balancer.terminate()
            balancer.wait(10)
        for replica in processes:
            replica.stop()
        with contextlib.suppress(Exception):
            s3.stop()
        postgres.destroy()
