"""A provisioner that runs nothing: it writes each host's agent config as the real ones do
and records which hosts are up, so the code that calls a provisioner can be tested
without containers. A test that needs a live agent starts one itself from
``config_path(name)``.
"""

from __future__ import annotations

import threading
from pathlib import Path

from shipyard.config import AgentConfig
from shipyard.provision import ProvisionerConfig, check_host_name, write_agent_config


class MemoryProvisioner:
    def __init__(self, config: ProvisionerConfig) -> None:
        self.config = config
        self._running: dict[str, AgentConfig] = {}
        # Every call that changed something, in order: ("start" | "stop", name).
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()  # the server calls from several worker threads

    def start_host(self, name: str, agent_config: AgentConfig) -> None:
        check_host_name(name)
        with self._lock:
            if name in self._running:
                return
            write_agent_config(self.config.work_dir, name, agent_config)
            self._running[name] = agent_config
            self.calls.append(("start", name))

    def stop_host(self, name: str) -> None:
        check_host_name(name)
        with self._lock:
            if self._running.pop(name, None) is not None:
                self.calls.append(("stop", name))

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def agent_config(self, name: str) -> AgentConfig | None:
        """The config ``start_host`` was given for a running host."""
        with self._lock:
            return self._running.get(name)

    def config_path(self, name: str) -> Path:
        """Where the host's agent config was written."""
        return self.config.work_dir / name / "agent.yml"
