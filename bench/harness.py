"""What the scale benchmarks share: a Shipyard server in its own process (so its CPU
time and peak memory can be read from /proc), an admin client, a throwaway PostgreSQL
database, bundles, and real agent processes started a few at a time.

Not a benchmark by itself: ``fleet_overhead.py``, ``control_plane.py``,
``agent_footprint.py`` and ``vs_ansible.py`` import it (``python bench/x.py`` puts
``bench/`` first on ``sys.path``).
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from jsonwire import API_PREFIX, JSON_TYPE, REGION

from shipyard import sigv4

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HOOKS = ("ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
SEVEN_EVENTS = 7  # ApplicationStop, DownloadBundle, BeforeInstall, Install, AfterInstall, ...


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_fd_limit() -> int:
    """Lift this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- reading a process from /proc --------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status, e.g. ``VmRSS`` or ``VmHWM`` (peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _has_socket(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return open_sockets(pid) > 0
    return False


def open_sockets(pid: int) -> int:
    fd_dir = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith("socket:"):
                count += 1
    return count


# ---- the server, in its own process ------------------------------------------------------


def _server_child_setup() -> None:
    """In the server's child process: room for thousands of sockets, and die with us."""
    import ctypes

    raise_fd_limit()
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ServerProcess:
    """``python -m shipyard server`` in a process group of its own, stopped on exit."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "",
        poll_seconds: float | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "shipyard",
            "server",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
        ]
        if database:
            command += ["--database", database]
        env = dict(os.environ)
        if poll_seconds is not None:
            env["SHIPYARD_POLL_SECONDS"] = str(poll_seconds)
        env.update(extra_env or {})
        self.log_path = data_dir / "server.out"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_server_child_setup,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_path.read_text()[-2000:]}")
            if (self.data_dir / "credentials").exists():
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1),
                ):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.05)

    def admin_keys(self) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        keys = parser["default"]
        return keys["aws_access_key_id"], keys["aws_secret_access_key"]

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return status_kib(self.pid, "VmRSS") / 1024

    def peak_mib(self) -> float:
        return status_kib(self.pid, "VmHWM") / 1024

    def database_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL backend connected to the server's
        database (none on SQLite, where the database is inside the server process)."""
        if not self.database:
            return {}
        import psycopg

        name = self.database.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            pids = [
                int(row[0])
                for row in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)
                )
            ]
        found = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                found[pid] = cpu_seconds(pid)
        return found

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"shipyard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def database_for(kind: str) -> Iterator[str]:
    """``--database`` value for a kind: "" (SQLite in the data dir) or a fresh PostgreSQL."""
    if kind == "sqlite":
        yield ""
    elif kind == "postgres":
        with postgres_database() as url:
            yield url
    else:
        raise SystemExit(f"unknown database {kind!r}: sqlite or postgres")


# ---- administration through the public API -------------------------------------------


@dataclass
class DeployResult:
    deployment_id: str
    wall: float  # CreateDeployment sent .. GetDeployment reports Succeeded (client side)
    server_seconds: float  # the server's own createTime .. completeTime
    server_cpu: float  # CPU the server process used over ``wall``
    database_cpu: float  # CPU of the PostgreSQL backends serving it (0 on SQLite)


FINAL_STATUSES = ("Succeeded", "Failed", "Stopped")


class StatusWatch:
    """A deployment's status by GetDeployment, on one kept-alive connection and signed by
    a ``PresetSigner``: what ``Admin.deploy`` polls every few milliseconds. Through boto3
    each poll cost 1.4 ms of CPU in this process, taken from the two cores the measured
    server and agents share; this costs a tenth of that."""

    def __init__(self, url: str, creds: sigv4.Credentials) -> None:
        host = url.removeprefix("http://")
        self._connection = http.client.HTTPConnection(host, timeout=60)
        self._signer = sigv4.PresetSigner(
            creds,
            method="POST",
            host=host,
            path="/",
            headers={"Content-Type": JSON_TYPE, "X-Amz-Target": API_PREFIX + "GetDeployment"},
            varying=(),
            region=REGION,
            service="codedeploy",
        )

    def status(self, deployment_id: str) -> str:
        body = json.dumps({"deploymentId": deployment_id}).encode()
        try:
            status, answer = self._ask(body)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server drops a connection idle for 5 s (between two deployments);
            # GetDeployment changes nothing, so asking again on a new one is safe.
            self._connection.close()
            status, answer = self._ask(body)
        if status != 200:
            raise RuntimeError(f"GetDeployment {deployment_id}: HTTP {status} {answer}")
        found: str = answer["deploymentInfo"]["status"]
        return found

    def _ask(self, body: bytes) -> tuple[int, Any]:
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._connection.request("POST", "/", body, self._signer.sign(body, amz_date, {}))
        reply = self._connection.getresponse()
        return reply.status, json.loads(reply.read())


class Admin:
    """boto3 clients with the server's admin key, plus the Shipyard extension calls."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        key_id, secret = server.admin_keys()
        self.creds = sigv4.Credentials(key_id, secret)
        session = boto3.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=REGION
        )
        config = BotoConfig(retries={"mode": "standard", "total_max_attempts": 3})
        self.cd = session.client("codedeploy", endpoint_url=server.url, config=config)
        self.s3 = session.client("s3", endpoint_url=server.url, config=config)
        self.watch = StatusWatch(server.url, self.creds)

    def extension(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        import urllib.request

        data = json.dumps(body).encode()
        headers = sigv4.sign_headers(
            self.creds,
            method="POST",
            host=self.server.url.removeprefix("http://"),
            path="/",
            body=data,
            headers={"Content-Type": JSON_TYPE, "X-Amz-Target": API_PREFIX + op},
            region=REGION,
            service="codedeploy",
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        request = urllib.request.Request(self.server.url + "/", data, headers, method="POST")
        with urllib.request.urlopen(request, timeout=60) as reply:
            result: dict[str, Any] = json.loads(reply.read() or b"{}")
        return result

    def register(self, name: str) -> tuple[str, str, str]:
        """Register one instance; (access key id, secret, host identifier) for its agent."""
        self.cd.register_on_premises_instance(
            instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
        )
        creds = self.extension("ShipyardIssueInstanceCredentials", {"instanceName": name})
        return creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]

    def tag(self, names: list[str], key: str, value: str = "yes") -> None:
        for start in range(0, len(names), 100):  # the API takes 100 instances per call
            self.cd.add_tags_to_on_premises_instances(
                instanceNames=names[start : start + 100], tags=[{"Key": key, "Value": value}]
            )

    def group(self, app: str, group: str, tag_key: str) -> None:
        """An AllAtOnce deployment group choosing the instances tagged ``tag_key=yes``."""
        with contextlib.suppress(self.cd.exceptions.ApplicationAlreadyExistsException):
            self.cd.create_application(applicationName=app)
        self.cd.create_deployment_group(
            applicationName=app,
            deploymentGroupName=group,
            serviceRoleArn="arn:aws:iam::000000000000:role/bench",
            deploymentConfigName="CodeDeployDefault.AllAtOnce",
            onPremisesInstanceTagFilters=[
                {"Key": tag_key, "Value": "yes", "Type": "KEY_AND_VALUE"}
            ],
        )

    def first_failure(self, deployment_id: str) -> str:
        """What the first failed target says went wrong (for the error message)."""
        ids = self.cd.list_deployment_targets(
            deploymentId=deployment_id, targetFilters={"TargetStatus": ["Failed"]}
        )["targetIds"][:1]
        if not ids:
            return "no failed target"
        target = self.cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
        instance = target["deploymentTargets"][0]["instanceTarget"]
        for event in instance.get("lifecycleEvents", []):
            if event.get("status") == "Failed":
                return f"{ids[0]} {event['lifecycleEventName']}: {event.get('diagnostics')}"
        return f"{ids[0]}: {instance.get('status')}"

    def upload(self, bucket: str, key: str, data: bytes) -> dict[str, Any]:
        with contextlib.suppress(self.s3.exceptions.BucketAlreadyOwnedByYou):
            self.s3.create_bucket(Bucket=bucket)
        etag = self.s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')
        return {
            "revisionType": "S3",
            "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip", "eTag": etag},
        }

    def deploy(
        self,
        app: str,
        group: str,
        revision: dict[str, Any],
        *,
        poll_interval: float = 0.005,
        timeout: float = 600.0,
    ) -> DeployResult:
        """Create a deployment and wait for it to end; raise unless it Succeeded."""
        cpu_before, db_before = self.server.cpu(), self.server.database_cpu()
        started = time.perf_counter()
        deployment_id = self.cd.create_deployment(
            applicationName=app,
            deploymentGroupName=group,
            revision=revision,  # type: ignore[arg-type]
        )["deploymentId"]
        deadline = time.monotonic() + timeout
        while (status := self.watch.status(deployment_id)) not in FINAL_STATUSES:
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployment {deployment_id} still {status}")
            time.sleep(poll_interval)
        wall = time.perf_counter() - started
        cpu = self.server.cpu() - cpu_before
        db_after = self.server.database_cpu()
        info = self.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        db_cpu = sum(v - db_before.get(pid, 0.0) for pid, v in db_after.items())
        if info["status"] != "Succeeded":
            raise RuntimeError(
                f"deployment {deployment_id} ended {info['status']}: "
                f"{info.get('deploymentOverview')}; {self.first_failure(deployment_id)}"
            )
        server_side = (info["completeTime"] - info["createTime"]).total_seconds()
        return DeployResult(deployment_id, wall, server_side, cpu, db_cpu)


# ---- bundles ---------------------------------------------------------------------------


def zip_bundle(files: dict[str, bytes | str], appspec: str) -> bytes:
    """A zip revision: ``appspec.yml`` plus ``files`` (``.sh`` files executable)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            mode = 0o755 if name.endswith(".sh") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def noop_bundle() -> bytes:
    """The no-op revision: an appspec with no files and no hooks (seven empty events)."""
    return zip_bundle({}, "version: 0.0\nos: linux\n")


# ---- real agent processes ----------------------------------------------------------------


class AgentFleet:
    """Real ``python -m shipyard.agent`` processes, one per registered instance, each
    with its own directory (``shipyard.demo.fleet``), started a few at a time."""

    def __init__(self, admin: Admin, base: Path, tag_key: str) -> None:
        self.admin = admin
        self.base = base
        self.tag_key = tag_key
        self.hosts: list[Any] = []  # shipyard.demo.fleet.LocalHost

    def start(self, count: int, *, batch: int = 8, pause: float = 0.4) -> float:
        """Register, tag and start ``count`` agents; wait until each is long-polling.
        Returns the seconds it took."""
        from shipyard.demo.fleet import prepare_host

        started = time.monotonic()
        names = [f"{self.tag_key}-{i:03d}" for i in range(len(self.hosts), count)]
        for index, name in enumerate(names):
            host = prepare_host(
                self.base, name, self.admin.server.url, self.admin.register(name), isolate=False
            )
            host.start()
            self.hosts.append(host)
            if (index + 1) % batch == 0:
                time.sleep(pause)  # imports cost CPU: do not start them all at once
        self.admin.tag(names, self.tag_key)
        deadline = time.monotonic() + 60 + count
        # An agent holds a socket only while a call is open: at rest, its long poll.
        waiting = list(self.hosts)
        while waiting:
            for host in waiting:
                if host.process.poll() is not None:
                    out = (host.home / "agent.out").read_text()[-2000:]
                    raise RuntimeError(f"agent {host.name} exited: {out}")
            waiting = [h for h in waiting if not _has_socket(h.process.pid)]
            if time.monotonic() > deadline:
                raise RuntimeError("the agents did not all connect in time")
            time.sleep(0.1)
        return time.monotonic() - started

    def pids(self) -> list[int]:
        return [h.process.pid for h in self.hosts if h.process is not None]

    def rss_mib(self) -> list[float]:
        return [status_kib(pid, "VmRSS") / 1024 for pid in self.pids()]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(ProcessLookupError):
                if host.process is not None and host.process.poll() is None:
                    os.killpg(host.process.pid, signal.SIGTERM)
        for host in self.hosts:
            host.stop()  # waits, and SIGKILLs one that lingers
