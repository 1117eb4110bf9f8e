"""The function host as the server's config describes it."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Callable
from pathlib import Path

from shipyard.config import ConfigError, ServerConfig
from shipyard.functions.host import FunctionHost, HostSettings
from shipyard.functions.worker import Launch
from shipyard.store.db import Database


def worker_user(name: str) -> tuple[int, int] | None:
    """``(uid, gid)`` workers run as: the named user when the server is root, else None
    (an unprivileged server cannot switch users; its workers run as itself)."""
    if os.geteuid() != 0 or not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"functions_user {name!r} does not exist on this machine") from None
    if entry.pw_uid == 0:
        raise ConfigError("functions_user must not be root: functions would read the data dir")
    return entry.pw_uid, entry.pw_gid


def build_function_host(
    config: ServerConfig, db: Database, clock: Callable[[], float]
) -> FunctionHost:
    settings = HostSettings(
        max_concurrency=config.functions_max_concurrency,
        max_function_concurrency=config.functions_max_function_concurrency,
        idle_seconds=config.functions_idle_seconds,
        credential_seconds=config.functions_credential_seconds,
        work_dir=Path(config.functions_work_dir) if config.functions_work_dir else None,
        launch=Launch(
            python=config.functions_python or sys.executable,
            endpoint_url=config.url,
            region=config.region,
            user=worker_user(config.functions_user),
        ),
    )
    return FunctionHost(settings, db, clock)
