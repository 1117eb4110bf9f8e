"""How a hook script is started: its command line, directory and user.

``runas`` never goes through ``su`` (which read a name such as ``-c id nobody`` as an
option, and ran the script as root): the name must be a POSIX user name, the user is
looked up here, and the child drops to its supplementary groups, group and uid before
the script starts (``initgroups``, ``setgid``, ``setuid``, done by :mod:`subprocess`
after it changed directory, still as root). The script starts in its own directory as
``./NAME``: the agent's root directory is closed to other users, and a relative path
needs search permission on the script's directory only.
"""

from __future__ import annotations

import errno
import os
import pwd
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNAS_SHELL = "/bin/sh"  # SHELL for a runas script, as ``su -s /bin/sh`` would set it
# A POSIX user name (as useradd accepts it); never one that starts with "-".
RUNAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")


@dataclass(frozen=True)
class Launch:
    """How to start one script: its argv, working directory and user (None: the agent's)."""

    argv: list[str]
    cwd: str = "/"
    user: pwd.struct_passwd | None = None


class LaunchError(Exception):
    """The script cannot be started as asked (e.g. its runas user does not exist)."""


def script_command(path: Path, runas: str | None, sudo: bool) -> Launch:
    """How to start a script, following the stock agent's ``runas``/``sudo`` rules.

    ``sudo`` adds nothing to ``runas`` (the agent is root and drops to the user
    itself), so it only matters without it.
    """
    if runas:
        if not RUNAS_NAME.fullmatch(runas):
            raise LaunchError(f"runas {runas!r} is not a valid user name")
        try:
            user = pwd.getpwnam(runas)
        except KeyError:
            raise LaunchError(f"runas user {runas!r} does not exist on this host") from None
        return Launch([f"./{path.name}"], str(path.parent), user)
    return Launch(["sudo", str(path)] if sudo else [str(path)])


def start(launch: Launch, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the script in its own session (its process group can be killed whole),
    stdin on /dev/null, stdout and stderr piped."""
    user = launch.user
    environment = dict(env)
    identity: dict[str, Any] = {}
    if user is not None:
        environment.update(
            HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name, SHELL=RUNAS_SHELL
        )
        if user.pw_uid != os.geteuid():
            # Popen changes directory first (still as root), then drops the groups,
            # the group and the user: initgroups, setgid, setuid, in that order.
            identity = {
                "user": user.pw_uid,
                "group": user.pw_gid,
                "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid),
            }

    def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            cwd=launch.cwd,
            start_new_session=True,  # own process group: a timeout kills all of it
            **identity,
        )

    try:
        return spawn(launch.argv)
    except OSError as exc:
        # A script without a "#!" line: run it with sh, as a shell (and execvp) would.
        if exc.errno == errno.ENOEXEC and launch.argv[0] != "sudo":
            return spawn(["/bin/sh", launch.argv[0]])
        raise


__all__ = ["RUNAS_NAME", "Launch", "LaunchError", "script_command", "start"]
