"""This machine's Podman API service (``podman system service``), started by Shipyard.

When no Docker endpoint is configured (``ServerConfig.ecs_endpoints``), the embedded ECS
runs its tasks on a Podman service of its own: the settings of
``shipyard/provision/containers.conf`` (runc, cgroupfs, no default ulimits: what works
without systemd and inside other containers), its container store under the server's
data directory, its run state and socket under ``/run/shipyard-podman/<hash>`` (Podman
limits the run root's length; a socket path is limited too). It starts on first use
and stops with the server; containers outlive it (conmon keeps them), so a restarted
server's new service sees them again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from shipyard.provision.podman import CONTAINERS_CONF, RUN_ROOT_BASE

START_SECONDS = 60.0  # a first start initialises the store; busy machines are slow


class CapacityError(Exception):
    """The container engine cannot be reached or started (one readable line)."""


class PodmanService:
    def __init__(self, work_dir: Path, podman: str = "podman") -> None:
        self.work_dir = work_dir.absolute()
        digest = hashlib.sha256(str(self.work_dir).encode()).hexdigest()[:16]
        self.run_root = RUN_ROOT_BASE / f"ecs-{digest}"
        self.socket = self.run_root / "podman.sock"
        self._podman = podman
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    def ensure_started(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            self._start()

    def _start(self) -> None:
        podman = shutil.which(self._podman)
        if podman is None:
            raise CapacityError(
                f"{self._podman} not found: install the Debian packages podman and runc, "
                "or set ecs_endpoints to a Docker API"
            )
        self.run_root.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        log = open(self.work_dir / "podman-service.log", "ab")  # noqa: SIM115 (the child holds it)
        command = [
            *self._global_options(podman),
            "system",
            "service",
            "--time",
            "0",
            self.address,
        ]
        env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        with log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                process, self._process = self._process, None
                _end(process)
                raise CapacityError(
                    f"podman system service did not start within {START_SECONDS:g} s "
                    f"(see {self.work_dir}/podman-service.log)"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        if not unix_socket_answers(str(self.socket)):
            return False
        try:
            # The client asks the engine's version as it is made: inside the try.
            client = docker.DockerClient(base_url=self.address, timeout=5)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        try:
            return bool(client.ping())
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return False
        finally:
            client.close()

    def teardown(self) -> None:
        """Remove every container in this store and the run state under /run, with the
        service stopped: for the end of a test or a rehearsal (a server that stops
        leaves its tasks running, for the next start to adopt)."""
        self.stop()
        podman = shutil.which(self._podman)
        if podman is not None and (self.work_dir / "storage").exists():
            subprocess.run(
                [*self._global_options(podman), "rm", "--all", "--force", "--time", "0"],
                env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(self.run_root, ignore_errors=True)

    def _global_options(self, podman: str) -> list[str]:
        return [
            podman,
            "--root",
            str(self.work_dir / "storage"),
            "--runroot",
            str(self.run_root),
            # vfs: no overlay mounts left behind in nested environments; images are tiny.
            "--storage-driver",
            "vfs",
        ]

    def stop(self) -> None:
        """End the API service; containers keep running."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _end(process)


def unix_socket_answers(path: str) -> bool:
    """Whether something accepts connections on the socket. Checked with a socket of our
    own before the client library tries: its socket is left unclosed when the connect
    fails."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
