"""The server's data directory, readable by the server's user only.

It holds the SQLite database, the admin credentials file, the secret key file and the
bundle store: the directory is made 0700 and those files 0600 at every start, so an
install made before this rule (0755 and 0644 by the umask) is fixed as it starts. The
``hosts`` directory of provisioned green hosts keeps its modes (container storage and
deployed applications need theirs); the 0700 directory above it closes it to others.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from shipyard.config import ConfigError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Trees whose every file the server alone reads (the bundle store).
PRIVATE_TREES = ("bundles",)


def secure_data_dir(path: Path) -> None:
    """Create ``path`` if needed; close it and the server's files in it to other users."""
    try:
        _secure(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot make the data directory {path} private: {exc} "
            "(it must belong to the user the server runs as)"
        ) from None


def _secure(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _restrict(path, PRIVATE_DIR)
    for entry in path.iterdir():
        if entry.is_file() and not entry.is_symlink():
            _restrict(entry, PRIVATE_FILE)
    for tree in PRIVATE_TREES:
        for root, _dirs, files in os.walk(path / tree):
            base = Path(root)
            _restrict(base, PRIVATE_DIR)
            for name in files:
                _restrict(base / name, PRIVATE_FILE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (before a library opens it)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def _restrict(path: Path, mode: int) -> None:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return
    if stat.S_IMODE(info.st_mode) & ~mode:  # group or other bits set, or more than that
        path.chmod(stat.S_IMODE(info.st_mode) & mode)
