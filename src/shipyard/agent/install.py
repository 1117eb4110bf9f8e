"""The Install lifecycle event: put the bundle's files in place, the stock agent's way.

``install(...)`` runs three steps (``installer.rb``, ``install_instruction.rb``):

1. Undo the group's previous install. ``<DGID>-cleanup`` lists every path that install
   created, one per line; they are removed in reverse order: files and symbolic links are
   deleted, directories only when empty, missing paths ignored. A last line without its
   newline is a torn write and is skipped; ``semanage\\0<path>`` lines drop the SELinux
   context registered for the path. The cleanup file is then deleted.
2. Plan: turn the appspec's ``files`` and ``permissions`` into instructions, checking all
   that can be checked before the disk is touched (two sources for one path, a file where a
   directory goes, existing files under the file_exists_behavior, unknown users and groups,
   missing tools). The plan is written to ``<DGID>-install.json``.
3. Execute it, appending every created directory and copied file to a new ``<DGID>-cleanup``
   line by line (flushed, a file's line before its copy starts), so that an interrupted
   install can still be undone by the next one.

Deliberate differences from the stock agent: permissions never act through a symbolic link
the deployment installed (chmod, ACLs and contexts skip links, chown changes the link
itself); OVERWRITE replaces an existing file instead of writing through it; a missing source
or a non-directory in the way of a directory fails the plan rather than the copy half-way;
a setuid/setgid mode is applied again after chown, which clears those bits.
"""

from __future__ import annotations

import errno
import grp
import json
import os
import posixpath
import pwd
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.agent import tree
from shipyard.agent.appspec import FILE_EXISTS_BEHAVIORS, AppSpec, FileMapping
from shipyard.agent.layout import ensure_dir
from shipyard.agent.permissions import (
    AclEntry,
    Mode,
    Permission,
    SelinuxContext,
    context_as_json,
    semanage_add_command,
    setfacl_command,
)

SEMANAGE_PREFIX = "semanage\0"


class InstallError(Exception):
    """Install could not be planned or carried out; the message says why and where."""


@dataclass(frozen=True)
class Copy:
    source: Path
    destination: str
    replace: bool = False  # OVERWRITE of a file already there


@dataclass(frozen=True)
class MakeDirectory:
    directory: str


@dataclass(frozen=True)
class ChangeMode:
    file: str
    mode: Mode


@dataclass(frozen=True)
class ChangeAcl:
    file: str
    entries: tuple[AclEntry, ...]


@dataclass(frozen=True)
class ChangeContext:
    file: str
    context: SelinuxContext


@dataclass(frozen=True)
class ChangeOwner:
    file: str
    owner: str | None
    group: str | None
    uid: int  # -1 leaves it unchanged
    gid: int


Instruction = Copy | MakeDirectory | ChangeMode | ChangeAcl | ChangeContext | ChangeOwner


def install(
    *,
    archive_dir: Path,
    appspec: AppSpec,
    instructions_dir: Path,
    deployment_group_id: str,
    file_exists_behavior: str,
) -> None:
    """Remove the group's previous install, then install ``archive_dir`` per the appspec.
    The appspec's own file_exists_behavior wins over the deployment's."""
    behavior = appspec.file_exists_behavior or file_exists_behavior
    if behavior not in FILE_EXISTS_BEHAVIORS:
        raise InstallError(
            f"Invalid file_exists_behavior {behavior!r}: use one of "
            f"{', '.join(FILE_EXISTS_BEHAVIORS)}"
        )
    if deployment_group_id in ("", ".", "..") or "/" in deployment_group_id:
        raise InstallError(f"Invalid deployment group id {deployment_group_id!r}")
    ensure_dir(instructions_dir)
    cleanup_file = instructions_dir / f"{deployment_group_id}-cleanup"
    undo_previous_install(cleanup_file)
    steps = plan_install(archive_dir, appspec, behavior)
    instructions = {"instructions": [_as_json(step) for step in steps]}
    install_file = instructions_dir / f"{deployment_group_id}-install.json"
    install_file.write_text(json.dumps(instructions, indent=1) + "\n")
    _execute(steps, cleanup_file)


# --------------------------------------------------------------------------- cleanup


def undo_previous_install(cleanup_file: Path) -> None:
    """Remove what the install recorded in ``cleanup_file`` (newest first), then the file."""
    try:
        text = cleanup_file.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return
    complete_lines = text.split("\n")[:-1]  # what follows the last newline was cut short
    for line in reversed(complete_lines):
        if line.startswith(SEMANAGE_PREFIX):
            _forget_context(line.removeprefix(SEMANAGE_PREFIX))
        elif line.startswith("/"):  # never act on a relative (corrupted) entry
            _remove_installed(line)
    cleanup_file.unlink()


def _remove_installed(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                os.rmdir(path)
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:  # someone else's files keep it
                    raise
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InstallError(
            f"Could not remove {path}, installed by the previous deployment: {exc.strerror}"
        ) from exc


def _forget_context(path: str) -> None:
    if shutil.which("semanage") is not None:
        # Like the stock agent, a context that is already gone is not an error.
        subprocess.run(
            ["semanage", "fcontext", "-d", path],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )


# ------------------------------------------------------------------------------ plan


def plan_install(
    archive_dir: Path, appspec: AppSpec, file_exists_behavior: str
) -> list[Instruction]:
    """Decide every step of the install without changing anything on disk."""
    planner = _Planner(archive_dir, file_exists_behavior)
    for mapping in appspec.files:
        planner.add_files(mapping)
    for permission in appspec.permissions:
        planner.add_permission(permission)
    _require_tools(planner.steps)
    return planner.steps


class _Planner:
    def __init__(self, archive_dir: Path, behavior: str) -> None:
        self.archive_dir = archive_dir
        self.behavior = behavior
        self.steps: list[Instruction] = []
        self.copies: dict[str, Path] = {}  # destination -> source, in plan order
        self.directories: dict[str, None] = {}  # an ordered set of directories to create
        self.permission_targets: set[str] = set()

    # files -------------------------------------------------------------------------

    def add_files(self, mapping: FileMapping) -> None:
        source = self._source_path(mapping.source)
        if source.is_dir() and not source.is_symlink():
            self._make_missing_ancestors(mapping.destination)
            self._copy_directory(source, mapping.destination)
        else:  # a file keeps its name: it goes *into* the destination directory
            destination = posixpath.join(mapping.destination, source.name)
            self._make_missing_ancestors(destination)
            self._copy_file(source, destination)

    def _source_path(self, source: str) -> Path:
        inside = posixpath.normpath(source.lstrip("/") or ".")
        path = self.archive_dir if inside == "." else self.archive_dir / inside
        if not os.path.lexists(path):
            raise InstallError(f"The appspec files source {source} does not exist in the bundle")
        # A symlink source is copied as a link, so only the directories above it are
        # followed: resolve them inside the bundle, by hand (never os.path.realpath,
        # which gives up past PATH_MAX while the kernel does not).
        if not tree.stays_inside(self.archive_dir, inside, follow_last=False):
            raise InstallError(
                f"The appspec files source {source} leads outside the bundle through a symlink"
            )
        return path

    def _copy_directory(self, source: Path, destination: str) -> None:
        if not os.path.isdir(destination):
            if os.path.lexists(destination):
                raise InstallError(
                    f"Cannot install the directory {destination}: a file is in the way"
                )
            self._mkdir(destination)
        for entry in sorted(os.scandir(source), key=lambda entry: entry.name):
            target = posixpath.join(destination, entry.name)
            if entry.is_dir(follow_symlinks=False):
                self._copy_directory(Path(entry.path), target)
            else:
                self._copy_file(Path(entry.path), target)

    def _copy_file(self, source: Path, destination: str) -> None:
        if not (source.is_symlink() or source.is_file()):
            raise InstallError(
                f"Cannot install {source}: only regular files, directories and symlinks can be"
            )
        replace = False
        if os.path.lexists(destination):
            if self.behavior == "DISALLOW":
                raise InstallError(
                    "The deployment failed because a specified file already exists at this "
                    f"location: {destination} (file_exists_behavior is DISALLOW: to replace it, "
                    "deploy with --file-exists-behavior OVERWRITE, or RETAIN to keep it)"
                )
            if self.behavior == "RETAIN":
                return  # keep what is there, and leave it out of the cleanup file
            if os.path.isdir(destination) and not os.path.islink(destination):
                raise InstallError(f"Cannot overwrite the directory {destination} with a file")
            replace = True
        _check_recordable(destination)
        if destination in self.copies:
            raise InstallError(
                f"Two sources are installed to the same destination {destination}: "
                f"{self.copies[destination]} and {source}"
            )
        if destination in self.directories:
            raise InstallError(
                f"Cannot install the file {source} at {destination}: "
                "a directory is being installed there"
            )
        self.copies[destination] = source
        self.steps.append(Copy(source, destination, replace))

    def _mkdir(self, directory: str) -> None:
        if directory in self.copies:
            raise InstallError(
                f"Cannot install the directory {directory}: the file "
                f"{self.copies[directory]} is being installed there"
            )
        if directory not in self.directories:
            _check_recordable(directory)
            self.directories[directory] = None
            self.steps.append(MakeDirectory(directory))

    def _make_missing_ancestors(self, path: str) -> None:
        missing: list[str] = []
        parent = posixpath.dirname(path)
        while parent != "/" and not os.path.lexists(parent):
            missing.insert(0, parent)
            parent = posixpath.dirname(parent)
        if not os.path.isdir(parent):
            raise InstallError(f"Cannot install {path}: {parent} is not a directory")
        for directory in missing:
            self._mkdir(directory)

    # permissions ---------------------------------------------------------------------

    def add_permission(self, permission: Permission) -> None:
        target = permission.object
        if target in self.copies:
            if "file" in permission.types:
                problem = permission.file_object_problem()
                if problem is not None:
                    raise InstallError(f"The appspec permissions for the file {target}: {problem}")
                self._check_file_acl(permission, target)
                self._set_permissions(target, permission)
        elif target in self.directories or os.path.isdir(target):
            for path in self._covered(permission):
                self._set_permissions(path, permission)

    def _covered(self, permission: Permission) -> Iterator[str]:
        """Installed paths a directory object's permission applies to: copied files, then
        created directories (never the object itself, nor anything already there)."""
        if "file" in permission.types:
            for path in self.copies:
                if permission.covers(path):
                    self._check_file_acl(permission, path)
                    yield path
        if "directory" in permission.types:
            yield from (path for path in self.directories if permission.covers(path))

    @staticmethod
    def _check_file_acl(permission: Permission, path: str) -> None:
        if permission.has_default_acl:
            raise InstallError(
                f"The appspec permissions for {permission.object} give default ACL entries to "
                f"the file {path}: default entries are only for directories"
            )

    def _set_permissions(self, path: str, permission: Permission) -> None:
        if path in self.permission_targets:
            raise InstallError(f"The appspec permissions set {path} more than once")
        self.permission_targets.add(path)
        if permission.mode is not None:
            self.steps.append(ChangeMode(path, permission.mode))
        if permission.acls is not None:
            self.steps.append(ChangeAcl(path, permission.acls))
        if permission.context is not None:
            self.steps.append(ChangeContext(path, permission.context))
        if permission.owner is not None or permission.group is not None:
            uid = -1 if permission.owner is None else _user_id(permission.owner)
            gid = -1 if permission.group is None else _group_id(permission.group)
            self.steps.append(ChangeOwner(path, permission.owner, permission.group, uid, gid))
            if permission.mode is not None and permission.mode.bits & 0o6000:
                # chown clears setuid and setgid: set the mode again so they stay.
                self.steps.append(ChangeMode(path, permission.mode))


def _check_recordable(path: str) -> None:
    # The cleanup file holds one path per line.
    if "\n" in path:
        raise InstallError(f"Cannot install {path!r}: its name contains a newline")


def _user_id(name: str) -> int:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise InstallError(f"The appspec permissions name an unknown owner: {name}") from None


def _group_id(name: str) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise InstallError(f"The appspec permissions name an unknown group: {name}") from None


def _require_tools(steps: list[Instruction]) -> None:
    if any(isinstance(step, ChangeAcl) for step in steps) and shutil.which("setfacl") is None:
        raise InstallError(
            "The appspec permissions set ACLs, but setfacl is not installed on this host "
            "(install the acl package)"
        )
    if any(isinstance(step, ChangeContext) for step in steps):
        missing = [tool for tool in ("semanage", "restorecon") if shutil.which(tool) is None]
        if missing:
            raise InstallError(
                "The appspec permissions set an SELinux context, but this host lacks the "
                f"SELinux tools ({', '.join(missing)} not found)"
            )


def _as_json(step: Instruction) -> dict[str, Any]:
    """The stock agent's install.json spelling of one instruction."""
    match step:
        case Copy(source, destination):
            return {"type": "copy", "source": str(source), "destination": destination}
        case MakeDirectory(directory):
            return {"type": "mkdir", "directory": directory}
        case ChangeMode(path, mode):
            return {"type": "chmod", "mode": mode.digits, "file": path}
        case ChangeAcl(path, entries):
            return {"type": "setfacl", "acl": [entry.text for entry in entries], "file": path}
        case ChangeContext(path, context):
            return {"type": "semanage", "context": context_as_json(context), "file": path}
        case ChangeOwner(path, owner, group):
            return {"type": "chown", "owner": owner, "group": group, "file": path}


def _describe(step: Instruction) -> str:
    spelled = _as_json(step)
    target = spelled.get("destination") or spelled.get("directory") or spelled.get("file")
    return f"{spelled['type']} {target}"


# --------------------------------------------------------------------------- execute


def _execute(steps: list[Instruction], cleanup_file: Path) -> None:
    with cleanup_file.open("w", encoding="utf-8", errors="surrogateescape") as record:

        def remember(path: str) -> None:
            record.write(path + "\n")
            record.flush()

        for step in steps:
            try:
                _run_step(step, remember)
            except OSError as exc:
                raise InstallError(
                    f"Install failed at {_describe(step)}: {exc.strerror or exc}"
                ) from exc


def _run_step(step: Instruction, remember: Callable[[str], None]) -> None:
    match step:
        case Copy(source, destination, replace):
            remember(destination)  # before the copy: a half-written file is still removed
            if replace:
                os.unlink(destination)
            if source.is_symlink():
                os.symlink(os.readlink(source), destination)
            else:
                _copy_preserving(source, destination)
        case MakeDirectory(directory):
            os.mkdir(directory)
            remember(directory)
        case ChangeMode(path, mode) if not os.path.islink(path):
            os.chmod(path, mode.bits)
        case ChangeAcl(path, entries) if not os.path.islink(path):
            _run(setfacl_command(path, entries, os.stat(path).st_mode))
        case ChangeContext(path, context) if not os.path.islink(path):
            real_path = os.path.realpath(path)
            _run(semanage_add_command(real_path, context))
            _run(["restorecon", "-v", real_path])
            remember(SEMANAGE_PREFIX + real_path)
        case ChangeOwner(path, _, _, uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)


def _copy_preserving(source: Path, destination: str) -> None:
    """Copy contents, mode and times. O_EXCL: never write through something in the way."""
    # O_NOFOLLOW on the source too: the plan saw a file there, never read through a link.
    with open(os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as reader:
        status = os.fstat(reader.fileno())
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
    os.chmod(destination, stat.S_IMODE(status.st_mode))
    os.utime(destination, ns=(status.st_atime_ns, status.st_mtime_ns))


def _run(command: list[str]) -> None:
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        detail = output.decode(errors="replace")
        raise InstallError(
            f"Install failed: {shlex.join(command)} exited with code {result.returncode}: {detail}"
        )
