"""One load balancer's HAProxy process: start, reload, adopt, stop.

HAProxy runs in master-worker mode as a daemon (``-W -D``), so it outlives the Shipyard
server that started it: the data plane keeps serving while the control plane restarts,
and the next server adopts it from its pid file. A reload (``reload`` on the master
socket) starts a new worker that takes the listening sockets over from the old one
(``expose-fd listeners``) and the servers' health and drain state from the state file
written just before; the old worker finishes the requests it has, so a reload drops no
connection. Files live in the balancer's directory: ``haproxy.cfg``, ``structure.cfg``
(the configuration without servers, to tell what a change needs), ``actions.map``,
``state``, ``a.sock`` (runtime API), ``m.sock`` (master), ``pid``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from shipyard.containers.elbv2.haproxy_config import Files
from shipyard.traffic import TrafficError
from shipyard.traffic.haproxy import RuntimeApi

START_SECONDS = 10.0
MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


class BalancerError(Exception):
    """HAProxy refused a configuration or did not come up (the message says why)."""


class BalancerProcess:
    def __init__(self, directory: Path, binary: str) -> None:
        self.directory = directory
        self.binary = binary
        self.files = Files(directory / "a.sock", directory / "actions.map", directory / "state")
        if len(str(self.files.admin_socket)) > MAX_SOCKET_PATH:
            raise BalancerError(
                f"the load balancer directory {directory} is too long for a unix socket path; "
                "set elb_dir to a shorter directory"
            )
        self.api = RuntimeApi(f"unix:{self.files.admin_socket}", timeout=5.0)

    @property
    def config_file(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def structure_file(self) -> Path:
        return self.directory / "structure.cfg"

    def running_structure(self) -> str | None:
        """The structure the running HAProxy was started or reloaded with (None: not running)."""
        if not self.alive():
            return None
        with contextlib.suppress(OSError):
            return self.structure_file.read_text()
        return None

    def master_pid(self) -> int | None:
        try:
            pid = int((self.directory / "pid").read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if b"haproxy" in cmdline and _running(pid) else None

    def alive(self) -> bool:
        return self.master_pid() is not None and self._answers()

    def start(self, config: str, structure: str, map_text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stop()
        self._write(config, structure, map_text)
        command = [self.binary, "-W", "-D", "-q", "-p", str(self.directory / "pid")]
        command += ["-S", str(self.directory / "m.sock"), "-f", str(self.config_file)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise BalancerError(_first_alert(done.stderr) or f"haproxy exited {done.returncode}")
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if time.monotonic() > deadline:
                raise BalancerError(f"haproxy did not answer on {self.files.admin_socket}")
            time.sleep(0.01)

    def reload(self, config: str, structure: str, map_text: str) -> None:
        """Load a new configuration without dropping a connection; on failure the old
        one keeps running and its files are put back."""
        old = {path: path.read_text() for path in self._paths() if path.exists()}
        self._check(config)
        before = self._worker_pid()
        self.files.state_file.write_text(self.api.run("show servers state"))
        self._write(config, structure, map_text)
        try:
            RuntimeApi(f"unix:{self.directory / 'm.sock'}", timeout=5.0).run("reload")
            deadline = time.monotonic() + START_SECONDS
            while self._worker_pid() in (before, None):
                if time.monotonic() > deadline:
                    raise BalancerError(
                        "haproxy did not start a new worker for the new configuration"
                    )
                time.sleep(0.01)
        except (BalancerError, TrafficError) as exc:
            for path, text in old.items():
                path.write_text(text)
            raise BalancerError(str(exc)) from None

    def stop(self) -> None:
        """Stop the master and its workers (gone within seconds; connections cut)."""
        pid = self.master_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- internals ---------------------------------------------------------------------

    def _paths(self) -> tuple[Path, ...]:
        return (self.config_file, self.structure_file, self.files.map_file)

    def _write(self, config: str, structure: str, map_text: str) -> None:
        self.files.map_file.write_text(map_text)
        self.structure_file.write_text(structure)
        self.config_file.write_text(config)

    def _check(self, config: str) -> None:
        candidate = self.directory / "candidate.cfg"
        candidate.write_text(config)
        done = subprocess.run(
            [self.binary, "-c", "-q", "-f", str(candidate)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise BalancerError(_first_alert(done.stderr) or "haproxy refused the configuration")

    def _answers(self) -> bool:
        try:
            self.api.run("show info")
        except TrafficError:
            return False
        return True

    def _worker_pid(self) -> str | None:
        try:
            info = self.api.run("show info")
        except TrafficError:
            return None
        for line in info.splitlines():
            if line.startswith("Pid:"):
                return line.split(":", 1)[1].strip()
        return None


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _first_alert(stderr: str) -> str:
    alerts = [line for line in stderr.splitlines() if "ALERT" in line]
    return (alerts[0] if alerts else stderr.strip()).split(" : ", 1)[-1][:500]
