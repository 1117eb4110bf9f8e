"""Durable record of the command in progress, so a restarted agent can report it.

Like the stock agent: before running a command the agent writes
``<root_dir>/ongoing-deployment/<deployment-id>`` holding the host command id, and
removes it once the result is reported. A file still there at startup means the agent
died mid-command; if it is less than a day old, that command is reported as failed
(error code 7) instead of leaving the server to wait for its timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TRACKING_DIR = "ongoing-deployment"
MAX_AGE_SECONDS = 24 * 3600
# Deployment ids become file names: allow only what CodeDeploy ids are made of.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class InterruptedCommand:
    """A command that was running when the agent stopped."""

    deployment_id: str
    command_id: str
    started: float  # epoch seconds the tracking file was written


class CommandTracker:
    """The ``ongoing-deployment`` directory under the agent's root dir."""

    def __init__(self, root_dir: Path) -> None:
        self.directory = root_dir / TRACKING_DIR

    def begin(self, deployment_id: str, command_id: str) -> None:
        """Record that ``command_id`` of ``deployment_id`` is about to run.

        Written whole or not at all (a temporary file renamed into place), but not
        synced: the file must outlive the agent's process (killed, crashed), which the
        page cache ensures; an fsync on every lifecycle event cost about 0.25 ms of CPU
        and 4 ms of waiting. If the machine itself goes down the file may be lost, and
        the server fails the event at its timeout instead of on the agent's restart."""
        path = self._path(deployment_id)
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(command_id)
        temporary.replace(path)

    def end(self, deployment_id: str) -> None:
        """The command's result has been reported: forget it."""
        self._path(deployment_id).unlink(missing_ok=True)

    def interrupted(self, now: float) -> list[InterruptedCommand]:
        """Commands whose tracking file is younger than a day, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                started = path.stat().st_mtime
                command_id = path.read_text().strip()
            except OSError:
                continue
            if command_id and now - started < MAX_AGE_SECONDS:
                found.append(InterruptedCommand(path.name, command_id, started))
        return sorted(found, key=lambda c: c.started, reverse=True)

    def clear(self) -> None:
        """Remove every tracking file (old ones included) and leftover temporaries."""
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)

    def _path(self, deployment_id: str) -> Path:
        if not _SAFE_NAME.fullmatch(deployment_id):
            raise ValueError(f"deployment id is not a safe file name: {deployment_id!r}")
        return self.directory / deployment_id


__all__ = ["MAX_AGE_SECONDS", "TRACKING_DIR", "CommandTracker", "InterruptedCommand"]
