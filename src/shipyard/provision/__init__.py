"""Starting and stopping replacement hosts for BLUE_GREEN deployments that provision them.

A ``Provisioner`` is the small seam every way of making hosts sits behind:

- ``start_host``: lay out a host's directory under ``work_dir/<name>`` (its agent config,
  deployment root and logs), start a host running the Shipyard agent with that config, and
  return once the host is running (not once its agent has polled);
- ``stop_host``: stop the host and remove it;
- ``hosts``: the names of the running hosts this provisioner started.

Invariants:

- the calls block (the server calls them from a worker thread) and raise only
  ``ProvisionError``, with one readable line;
- ``start_host`` of a running host and ``stop_host`` of a missing one change nothing;
- adding a way of making hosts means one module plus one line in ``PROVISIONERS``; this
  package names no vendor anywhere else. ``memory`` records hosts and runs nothing (for
  tests of the code that calls a provisioner), ``podman`` starts each host as a Podman
  container whose root is an overlay of this machine's ``/``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shipyard.config import AgentConfig, agent_config_to_yaml

# Container names and directory names both come from a host name, so it must be safe as
# either: Podman's own rule for names, which also rules out "..", "/" and leading dots.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


# Marks the hosts the server provisioned for a blue/green deployment; the value names
# their fleet. Retiring such a host also removes it through the provisioner.
GREEN_TAG = "shipyard:green"


class ProvisionError(Exception):
    """A host could not be started, stopped or listed; the message says why."""


@dataclass(frozen=True)
class ProvisionerConfig:
    kind: str  # a key of PROVISIONERS: "podman" | "memory"
    work_dir: Path  # per-host files live in work_dir/<name>/
    # The interpreter (with shipyard importable) that runs the agent on a started host.
    python: str = sys.executable


class Provisioner(Protocol):
    def start_host(self, name: str, agent_config: AgentConfig) -> None:
        """Write ``work_dir/<name>/agent.yml`` and start a host running the agent with it."""
        ...

    def stop_host(self, name: str) -> None:
        """Stop and remove the host; nothing happens when there is none."""
        ...

    def hosts(self) -> list[str]:
        """Names of the running hosts this provisioner started, sorted."""
        ...


@dataclass(frozen=True)
class HostLayout:
    """Where one host's files live: the same paths on this machine and on the host."""

    home: Path

    @property
    def config_path(self) -> Path:
        return self.home / "agent.yml"

    @property
    def root_dir(self) -> Path:
        return self.home / "deployment-root"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"


def check_host_name(name: str) -> None:
    """Reject a host name that could not name a container and a directory."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ProvisionError(
            f"invalid host name {name!r}: 1 to 63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )


def write_agent_config(work_dir: Path, name: str, agent_config: AgentConfig) -> HostLayout:
    """Lay out ``work_dir/<name>`` and write the agent config with its root and log
    directories moved there; readable by the owner only (it holds a secret key)."""
    check_host_name(name)
    layout = HostLayout(work_dir / name)
    config = dataclasses.replace(agent_config, root_dir=layout.root_dir, log_dir=layout.log_dir)
    try:
        layout.root_dir.mkdir(parents=True, exist_ok=True)
        layout.log_dir.mkdir(parents=True, exist_ok=True)
        layout.config_path.touch(mode=0o600, exist_ok=True)
        layout.config_path.chmod(0o600)
        layout.config_path.write_text(agent_config_to_yaml(config))
    except OSError as exc:
        raise ProvisionError(f"cannot write the agent config of host {name}: {exc}") from exc
    return layout


def _memory(config: ProvisionerConfig) -> Provisioner:
    from shipyard.provision.memory import MemoryProvisioner

    return MemoryProvisioner(config)


def _podman(config: ProvisionerConfig) -> Provisioner:
    from shipyard.provision.podman import PodmanProvisioner

    return PodmanProvisioner(config)


PROVISIONERS: dict[str, Callable[[ProvisionerConfig], Provisioner]] = {
    "memory": _memory,
    "podman": _podman,
}


def get_provisioner(config: ProvisionerConfig) -> Provisioner:
    """Build the provisioner ``config.kind`` names."""
    factory = PROVISIONERS.get(config.kind)
    if factory is None:
        known = ", ".join(sorted(PROVISIONERS))
        raise ProvisionError(f"unknown provisioner kind {config.kind!r} (known: {known})")
    return factory(config)


__all__ = [
    "PROVISIONERS",
    "HostLayout",
    "ProvisionError",
    "Provisioner",
    "ProvisionerConfig",
    "check_host_name",
    "get_provisioner",
    "write_agent_config",
]
