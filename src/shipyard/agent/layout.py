"""Where the agent keeps things on disk: the stock CodeDeploy agent's layout.

::

    <root>/<DeploymentGroupId>/<DeploymentId>/bundle.tar
    <root>/<DeploymentGroupId>/<DeploymentId>/deployment-archive/
    <root>/<DeploymentGroupId>/<DeploymentId>/logs/scripts.log
    <root>/deployment-instructions/<DGID>-cleanup
    <root>/deployment-instructions/<DGID>-install.json
    <root>/deployment-instructions/<DGID>_last_successful_install
    <root>/deployment-instructions/<DGID>_most_recent_install

The two ``_install`` marker files hold the path of a deployment directory, as the
stock agent writes them, so an operator's tooling built for the stock agent keeps
working.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

INSTRUCTIONS_DIR = "deployment-instructions"
ARCHIVE_DIR = "deployment-archive"
BUNDLE_FILE = "bundle.tar"
PRIVATE_MODE = 0o700  # the root and each deployment directory: the agent's (root's) alone


@dataclass(frozen=True)
class Layout:
    """Paths under one agent root directory (``AgentConfig.root_dir``)."""

    root: Path

    def secure_root(self) -> None:
        """Create the root directory closed to other users, or close an existing one
        (older installs made it 0755, and bundles hold scripts that run as root)."""
        try:  # one system call when the root is there, as on every DownloadBundle
            os.chmod(self.root, PRIVATE_MODE)
        except FileNotFoundError:
            self.root.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
            self.root.chmod(PRIVATE_MODE)

    @property
    def instructions_dir(self) -> Path:
        return self.root / INSTRUCTIONS_DIR

    def group_dir(self, group_id: str) -> Path:
        return self.root / group_id

    # One joinpath rather than a chain of "/": each "/" builds and parses a Path, and
    # these run on every lifecycle event.
    def deployment_dir(self, group_id: str, deployment_id: str) -> Path:
        return self.root.joinpath(group_id, deployment_id)

    def bundle_file(self, group_id: str, deployment_id: str) -> Path:
        return self.root.joinpath(group_id, deployment_id, BUNDLE_FILE)

    def archive_dir(self, group_id: str, deployment_id: str) -> Path:
        return self.root.joinpath(group_id, deployment_id, ARCHIVE_DIR)

    def scripts_log(self, group_id: str, deployment_id: str) -> Path:
        return self.root.joinpath(group_id, deployment_id, "logs", "scripts.log")

    def last_successful_file(self, group_id: str) -> Path:
        return self.instructions_dir / f"{group_id}_last_successful_install"

    def most_recent_file(self, group_id: str) -> Path:
        return self.instructions_dir / f"{group_id}_most_recent_install"

    def last_successful_dir(self, group_id: str) -> Path | None:
        """The deployment directory of the group's last successful Install, if any."""
        return _read_marker(self.last_successful_file(group_id))

    def most_recent_dir(self, group_id: str) -> Path | None:
        """The deployment directory of the group's most recent DownloadBundle, if any."""
        return _read_marker(self.most_recent_file(group_id))

    def mark_last_successful(self, group_id: str, deployment_id: str) -> None:
        _write_marker(
            self.last_successful_file(group_id), self.deployment_dir(group_id, deployment_id)
        )

    def mark_most_recent(self, group_id: str, deployment_id: str) -> None:
        _write_marker(self.most_recent_file(group_id), self.deployment_dir(group_id, deployment_id))


def ensure_dir(path: Path, mode: int = 0o777) -> None:
    """Create ``path`` (and its parents) unless it is already a directory.

    Checked first because on ext4 a mkdir that fails with EEXIST takes the parent's lock
    and journal handle all the same: about 0.1 ms of system time with a fleet's worth of
    agents writing, where the stat is a few microseconds; and the group and instructions
    directories are there at every deployment but a host's first."""
    if not os.path.isdir(path):
        path.mkdir(mode=mode, parents=True, exist_ok=True)


# Markers are read and written with os calls rather than Path.read_text/write_text: a
# Python file object costs four more system calls (fstat, ioctl, two lseek) per file,
# and a deployment reads a marker three times and writes two.
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def _read_marker(path: Path) -> Path | None:
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    try:
        data = b"".join(iter(lambda: os.read(fd, 65536), b""))
    finally:
        os.close(fd)
    text = data.decode().strip()  # as read_text would: UTF-8 (a path we wrote)
    return Path(text) if text else None


def _write_marker(path: Path, target: Path) -> None:
    # Write-then-rename: a crash mid-write must never leave a half path behind.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(temporary, _CREATE_FLAGS, 0o644)
    except FileNotFoundError:  # the first marker: no instructions directory yet
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, _CREATE_FLAGS, 0o644)
    try:
        os.write(fd, str(target.absolute()).encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


__all__ = ["ARCHIVE_DIR", "BUNDLE_FILE", "INSTRUCTIONS_DIR", "PRIVATE_MODE", "Layout"]
