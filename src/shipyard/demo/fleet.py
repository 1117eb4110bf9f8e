"""A fleet of local hosts on one machine: real agent processes, each with its own
filesystem view, for the demo, end-to-end tests, benchmarks and rehearsals.

Each host gets a directory of its own holding its agent config, deployment root
and logs. Where appspec destinations are absolute (``/srv/app``), the agent runs
under ``unshare --mount`` with the host's own directory bind-mounted over each
shared path, so three agents installing to ``/srv/app`` never collide. That needs
root (or user namespaces); without it the agents share the real paths.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.config import AgentConfig, agent_config_to_yaml


@dataclass(frozen=True)
class HostSpec:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


def can_isolate() -> bool:
    """Whether agents can get private mount namespaces here."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@dataclass
class LocalHost:
    name: str
    home: Path  # everything of this host lives under here
    config_path: Path
    shared_paths: tuple[Path, ...]
    isolate: bool
    process: subprocess.Popen[bytes] | None = None

    def view(self, path: str | Path) -> Path:
        """Where this host's view of an absolute ``path`` lives on the real disk."""
        path = Path(path)
        for shared in self.shared_paths:
            if path == shared or shared in path.parents:
                if self.isolate:
                    return self.home / "fs" / shared.relative_to("/") / path.relative_to(shared)
                return path
        return path

    def command(self) -> list[str]:
        agent = [sys.executable, "-m", "shipyard.agent", "--config", str(self.config_path)]
        if not self.isolate or not self.shared_paths:
            return agent
        mounts = []
        for shared in self.shared_paths:
            private = self.home / "fs" / shared.relative_to("/")
            mounts.append(f"mount --bind {_quote(private)} {_quote(shared)}")
        script = " && ".join([*mounts, "exec " + " ".join(_quote(a) for a in agent)])
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def start(self, env: dict[str, str] | None = None) -> None:
        log = open(self.home / "agent.out", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _quote(value: str | Path) -> str:
    text = str(value)
    return "'" + text.replace("'", "'\"'\"'") + "'"


def prepare_host(
    base: Path,
    name: str,
    endpoint: str,
    credentials: tuple[str, str, str],
    shared_paths: Sequence[str | Path] = (),
    *,
    isolate: bool,
    poll_seconds: float = 20.0,
) -> LocalHost:
    """Lay out a host's directory and agent config. ``credentials`` are the
    instance's (access key id, secret, host identifier)."""
    home = base / name
    home.mkdir(parents=True, exist_ok=True)
    shared = tuple(Path(p) for p in shared_paths)
    for path in shared:
        if isolate:
            path.mkdir(parents=True, exist_ok=True)
            (home / "fs" / path.relative_to("/")).mkdir(parents=True, exist_ok=True)
    key_id, secret, host_identifier = credentials
    config = AgentConfig(
        endpoint=endpoint,
        instance_name=name,
        access_key_id=key_id,
        secret_access_key=secret,
        host_identifier=host_identifier,
        root_dir=home / "deployment-root",
        log_dir=home / "log",
        poll_seconds=poll_seconds,
    )
    config_path = home / "agent.yml"
    config_path.write_text(agent_config_to_yaml(config))
    config_path.chmod(0o600)
    return LocalHost(name, home, config_path, shared, isolate)


def stop_all(hosts: Iterable[LocalHost]) -> None:
    for host in hosts:
        host.stop()
