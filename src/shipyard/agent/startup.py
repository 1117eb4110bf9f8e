"""What an agent checks before it polls: its root directory is writable, and no other
agent runs with the same root directory (two would take turns claiming commands and
write over each other's deployments and logs).

The lock is an ``fcntl.flock`` on ``<root_dir>/.agent.lock``, held for the life of the
process; the kernel drops it when the process ends, however it ends, so a crashed agent
never leaves a stale lock. The file records the holder's pid for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from shipyard.agent.layout import Layout

LOCK_NAME = ".agent.lock"


class StartupError(Exception):
    """The agent cannot start; the message is one line for the operator."""


def prepare_root(root_dir: Path) -> IO[str]:
    """Create and close the root dir, take the agent lock, and return the open lock file
    (keep it open: closing it releases the lock)."""
    try:
        Layout(root_dir).secure_root()
        lock = (root_dir / LOCK_NAME).open("a+")
    except OSError as exc:
        raise StartupError(
            f"root directory {root_dir} is not writable: {exc.strerror or exc} "
            "(run the agent as root, or register with --root-dir DIR it may write)"
        ) from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise StartupError(
            f"another agent (pid {holder}) already runs with root directory {root_dir}; "
            "stop it first, or give this one its own root_dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock
