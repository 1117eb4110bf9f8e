"""Hosts as Podman containers on this machine, each running the Shipyard agent.

A container's root is an overlay of this machine's ``/`` (``--rootfs /:O``): it sees the
project, its virtualenv and the Python interpreter where they are here, while everything
it writes (an appspec installing to ``/srv/app``, say) stays in its own overlay. So
several hosts install to the same absolute paths without colliding, and nothing they
install shows on this machine: read it back with ``read_file``. The host's own directory
``work_dir/<name>`` (agent config, deployment root, logs) is bind-mounted at the same
path, so its agent log can be read here, also after the container is gone.

The containers share this machine's network (``--network host``), so an agent reaches a
server on 127.0.0.1. Podman runs with this package's ``containers.conf`` (runc, cgroupfs,
no default ulimits: what works without systemd and inside other containers) and with its
container store under ``work_dir`` (run state under ``/run/shipyard-podman/<hash of
work_dir>``), so it never touches ``/var/lib/containers`` and ``hosts`` sees only this
provisioner's containers. Containers run as root, as rootful Podman does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from shipyard.config import AgentConfig
from shipyard.provision import (
    ProvisionerConfig,
    ProvisionError,
    check_host_name,
    write_agent_config,
)

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
HOST_LABEL = "shipyard.host"
RUN_ROOT_BASE = Path("/run/shipyard-podman")
DEFAULT_TIMEOUT = 60.0  # one podman command; starting a container takes about a second
DEFAULT_STOP_SECONDS = 10  # SIGTERM to SIGKILL; an idle agent stops at once


def container_name(name: str) -> str:
    return f"shipyard-{name}"


class PodmanProvisioner:
    def __init__(
        self,
        config: ProvisionerConfig,
        *,
        podman: str = "podman",
        timeout: float = DEFAULT_TIMEOUT,
        stop_seconds: int = DEFAULT_STOP_SECONDS,
    ) -> None:
        if not CONTAINERS_CONF.is_file():
            raise ProvisionError(f"{CONTAINERS_CONF} is missing: shipyard is not fully installed")
        # Paths are used inside the containers too, so they must not depend on a cwd.
        self.work_dir = config.work_dir.absolute()
        self.python = config.python
        self.timeout = timeout
        self.stop_seconds = stop_seconds
        self._podman_path = podman
        # Podman refuses a run root longer than 50 characters (it goes into overlay mount
        # options), so it cannot live under an arbitrary work_dir: a short directory of its
        # own per work_dir instead, like Podman's default /run/containers/storage.
        digest = hashlib.sha256(str(self.work_dir).encode()).hexdigest()[:16]
        self.run_root = RUN_ROOT_BASE / digest

    # ---- the Provisioner protocol -------------------------------------------------------

    def start_host(self, name: str, agent_config: AgentConfig) -> None:
        check_host_name(name)
        state = self._state(name)
        if state == "running":
            return
        # With --init, podman starts catatonit fine and only then fails to run the agent,
        # so a missing interpreter would pass unnoticed: check it here (the container sees
        # this machine's files where they are here).
        if shutil.which(self.python) is None:
            raise ProvisionError(f"cannot run the agent: {self.python} is not an executable file")
        if state is not None:  # exited or never started: make way for a fresh one
            self._remove(name)
        layout = write_agent_config(self.work_dir, name, agent_config)
        home = str(layout.home)
        try:
            self._run(
                "run",
                "--detach",
                "--name",
                container_name(name),
                "--label",
                f"{HOST_LABEL}={name}",
                "--hostname",
                name,
                "--network",
                "host",
                # catatonit as PID 1: forwards SIGTERM to the agent and reaps whatever
                # hook scripts leave behind.
                "--init",
                "--volume",
                f"{home}:{home}",
                "--env",
                "PYTHONUNBUFFERED=1",
                # --rootfs takes the next two words as root and command: options go first.
                "--rootfs",
                "/:O",
                self.python,
                "-m",
                "shipyard.agent",
                "--config",
                str(layout.config_path),
            )
        except ProvisionError:
            state = self._state(name)
            if state == "running":  # a concurrent start_host of the same host won
                return
            if state is not None:  # created but not started: leave nothing behind
                self._remove(name)
            raise

    def stop_host(self, name: str) -> None:
        check_host_name(name)
        self._remove(name)

    def hosts(self) -> list[str]:
        running = self._list(HOST_LABEL, include_stopped=False)
        return sorted({c["Labels"][HOST_LABEL] for c in running if c.get("State") == "running"})

    # ---- for tests and rehearsals -------------------------------------------------------

    def teardown(self) -> None:
        """Remove every container this provisioner made, running or not, and its Podman
        run state under /run: for the end of a test or a rehearsal (a server that stops
        leaves its hosts running)."""
        names = {c["Labels"][HOST_LABEL] for c in self._list(HOST_LABEL, include_stopped=True)}
        if names:
            self._remove(*sorted(names))
        shutil.rmtree(self.run_root, ignore_errors=True)

    def read_file(self, name: str, path: str) -> str:
        """The text of ``path`` as the host sees it (in its overlay, not on this machine)."""
        check_host_name(name)
        out = self._run("exec", container_name(name), "cat", "--", path)
        return out.decode(errors="replace")

    def logs(self, name: str) -> str:
        """What the host's agent printed (stdout, then stderr), for diagnosing failures."""
        check_host_name(name)
        result = self._call("logs", container_name(name))
        return (result.stdout + result.stderr).decode(errors="replace")

    # ---- podman ---------------------------------------------------------------------------

    def _state(self, name: str) -> str | None:
        """The container's state ("running", "exited", "created", ...), None if there is none."""
        for found in self._list(f"{HOST_LABEL}={name}", include_stopped=True):
            if container_name(name) in found.get("Names", []):
                return str(found.get("State", "unknown"))
        return None

    def _remove(self, *names: str) -> None:
        containers = [container_name(name) for name in names]
        self._run("rm", "--force", "--ignore", "--time", str(self.stop_seconds), *containers)

    def _list(self, label: str, *, include_stopped: bool) -> list[dict[str, Any]]:
        """Containers carrying ``label`` ("key" or "key=value"), as podman ps describes them."""
        stopped = ["--all"] if include_stopped else []
        out = self._run("ps", *stopped, "--format", "json", "--filter", f"label={label}")
        try:
            found = json.loads(out or b"[]")
        except ValueError as exc:
            raise ProvisionError(f"podman ps printed something that is not JSON: {exc}") from exc
        return [c for c in found or [] if isinstance(c, dict) and HOST_LABEL in c.get("Labels", {})]

    def _run(self, *args: str) -> bytes:
        """Run one podman command; its stdout, or ProvisionError naming what went wrong."""
        result = self._call(*args)
        if result.returncode != 0:
            raise ProvisionError(f"podman {args[0]} failed: {_first_error(result.stderr)}")
        return result.stdout

    def _call(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [
            self._podman_path,
            "--root",
            str(self.work_dir / "podman-storage"),
            "--runroot",
            str(self.run_root),
            # No images are involved (the root is the --rootfs overlay), and the default
            # overlay driver would leave its store bind-mounted on itself after every call.
            "--storage-driver",
            "vfs",
            *args,
        ]
        env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            return subprocess.run(
                command, capture_output=True, env=env, timeout=self.timeout, check=False
            )
        except FileNotFoundError as exc:
            raise ProvisionError(
                f"{self._podman_path} not found: install the Debian packages podman and runc"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ProvisionError(f"podman {args[0]} timed out after {self.timeout:g} s") from exc
        except OSError as exc:
            raise ProvisionError(f"cannot run podman {args[0]}: {exc}") from exc


def _first_error(stderr: bytes) -> str:
    """The line of podman's stderr that says what failed: the first ``Error:`` line, else
    the first line at all (warnings come first and say little)."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if line.startswith("Error:"):
            return line.removeprefix("Error:").strip()
    return lines[0] if lines else "no error message"
