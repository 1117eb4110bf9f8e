"""Running the hook scripts of one lifecycle event, the way the stock agent does.

Each script runs in its own session (so its process group can be killed as a whole),
with stdin on /dev/null, as the appspec's ``runas`` user (privileges dropped in the
child) or under ``sudo`` when the appspec says so. A location that resolves outside the
bundle (through a symlink) is never run.
Its stdout and stderr are read concurrently, line by line, with one selector; every
line goes to ``scripts.log`` in the stock format and to the ``on_output`` callback.

Failure codes are the stock agent's (``ScriptError``): 1 missing, 2 not executable,
3 timed out, 4 non-zero exit, 5 unknown, 6 the script exited but something it started
still holds its stdout/stderr open (the classic ``nohup server &`` without redirection;
the stock agent would wait on it until the script's timeout, an hour by default;
Shipyard reports it ``output_linger`` seconds after the script itself exited).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING

from shipyard.agent import tree
from shipyard.agent.launch import LaunchError, script_command, start

if TYPE_CHECKING:
    from shipyard.agent.appspec import HookScript

LOG_TAIL_CHARS = 4096
MAX_LINE_BYTES = 64 * 1024  # a "line" longer than this is emitted in pieces
DEFAULT_KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out group
# After a script exits, how long something it started may go on writing to its outputs
# before that is reported (ScriptError 6), instead of waiting out the script's timeout.
DEFAULT_OUTPUT_LINGER = 5.0
EXIT_CHECK_SECONDS = 0.5  # how often a script's exit is checked while its outputs are quiet


class ScriptError(IntEnum):
    """The stock agent's numeric error codes, reported in PutHostCommandComplete."""

    SUCCEEDED = 0
    SCRIPT_MISSING = 1
    SCRIPT_NOT_EXECUTABLE = 2
    SCRIPT_TIMED_OUT = 3
    SCRIPT_FAILED = 4
    UNKNOWN_ERROR = 5
    OUTPUTS_LEFT_OPEN = 6
    FAILED_AFTER_RESTART = 7


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one host command, as PutHostCommandComplete reports it."""

    error_code: int
    script_name: str
    message: str
    log: str

    @property
    def succeeded(self) -> bool:
        return self.error_code == ScriptError.SUCCEEDED

    def diagnostics(self) -> dict[str, object]:
        """The ``Diagnostics.Payload`` object of PutHostCommandComplete."""
        return {
            "error_code": self.error_code,
            "script_name": self.script_name,
            "message": self.message,
            "log": self.log,
        }


@dataclass(frozen=True)
class HookRun:
    """Everything the scripts of one lifecycle event run with."""

    event: str
    archive_dir: Path
    log_file: Path
    env: Mapping[str, str]  # the complete environment of the scripts
    on_output: Callable[[str], None]
    kill_grace: float = DEFAULT_KILL_GRACE
    output_linger: float = DEFAULT_OUTPUT_LINGER
    clock: Callable[[], float] = time.time  # wall clock for the log timestamps


def run_event(scripts: Sequence[HookScript], run: HookRun) -> CommandResult:
    """Run ``scripts`` in order; stop at the first failure. No scripts is a success."""
    if not scripts:
        return CommandResult(ScriptError.SUCCEEDED, "", "Succeeded", "")
    tail = _LogTail()
    run.log_file.parent.mkdir(parents=True, exist_ok=True)
    with run.log_file.open("a", encoding="utf-8") as log:
        writer = _LineWriter(log, run, tail)
        writer.write(f"LifecycleEvent - {run.event}")
        for script in scripts:
            failure = _run_one(script, run, writer, tail)
            if failure is not None:
                return failure
    return CommandResult(ScriptError.SUCCEEDED, "", "Succeeded", tail.text())


def _run_one(
    script: HookScript, run: HookRun, writer: _LineWriter, tail: _LogTail
) -> CommandResult | None:
    location = script.location
    path = run.archive_dir / location.lstrip("/")

    def fail(code: ScriptError, message: str) -> CommandResult:
        return CommandResult(code, location, message, tail.text())

    if not tree.stays_inside(run.archive_dir, location):
        return fail(
            ScriptError.SCRIPT_MISSING,
            f"Script at specified location: {location} leads outside the bundle through a symlink",
        )
    if not path.exists():
        return fail(
            ScriptError.SCRIPT_MISSING,
            f"Script does not exist at specified location: {path.resolve()}",
        )
    if not path.is_file():
        return fail(
            ScriptError.SCRIPT_NOT_EXECUTABLE,
            f"Script at specified location: {location} is not a regular file",
        )
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | 0o111)
        except OSError as exc:
            return fail(
                ScriptError.SCRIPT_NOT_EXECUTABLE,
                f"Unable to set script at specified location: {location} as executable "
                f"({exc.strerror})",
            )
    try:
        launch = script_command(path, script.runas, script.sudo)
    except LaunchError as exc:
        writer.write(f"Script - {location}: {exc}")
        tail.add(f"{exc}\n")
        return fail(ScriptError.SCRIPT_FAILED, f"Script at specified location: {location}: {exc}")
    writer.write(f"Script - {location}")
    try:
        process = start(launch, run.env)
    except OSError as exc:
        if launch.argv[0] != "sudo":  # e.g. a "#!" line naming a missing interpreter
            as_user = f" as {launch.user.pw_name}" if launch.user is not None else ""
            return fail(
                ScriptError.SCRIPT_NOT_EXECUTABLE,
                f"Script at specified location: {location} cannot be executed{as_user}: "
                f"{exc.strerror or exc}",
            )
        return fail(
            ScriptError.UNKNOWN_ERROR,
            f"Script at specified location: {location} could not be started with "
            f"{launch.argv[0]}: {exc.strerror or exc}",
        )
    try:
        timed_out, left_open = _supervise(process, script.timeout, run, writer)
    except BaseException:
        # e.g. the log's disk filled up: never leave a script running unsupervised.
        if process.poll() is None:
            _kill_group(process, run.kill_grace)
        _close(process.stdout, process.stderr)
        raise
    if timed_out:
        return fail(
            ScriptError.SCRIPT_TIMED_OUT,
            f"Script at specified location: {location} failed to complete in "
            f"{script.timeout} seconds",
        )
    if left_open:
        return fail(
            ScriptError.OUTPUTS_LEFT_OPEN,
            f"Script at specified location: {location} failed to close "
            f"{' and '.join(left_open)} (the script exited, but a background process it "
            "started kept it open; redirect that process's output, e.g. "
            "'nohup server >/var/log/server.log 2>&1 &')",
        )
    status = process.returncode
    if status != 0:
        code = 128 - status if status < 0 else status  # killed by a signal: as a shell shows it
        return fail(
            ScriptError.SCRIPT_FAILED,
            f"Script at specified location: {location} failed with exit code {code}",
        )
    return None


def _supervise(
    process: subprocess.Popen[bytes], timeout: int, run: HookRun, writer: _LineWriter
) -> tuple[bool, list[str]]:
    """Pump output until the script is done or its deadline passes.

    Returns whether the script was still running at the deadline, and the names of the
    outputs (STDOUT, STDERR) that something still held open then, or ``output_linger``
    seconds after the script exited. In both of those
    cases the script's whole process group is killed. A script that finished cleanly is
    left alone, and so are the daemons it started with their outputs redirected.
    """
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    streams = {process.stdout: "stdout", process.stderr: "stderr"}
    pending = {name: bytearray() for name in streams.values()}
    with selectors.DefaultSelector() as selector:
        for stream, name in streams.items():
            selector.register(stream, selectors.EVENT_READ, name)
        exited_at: float | None = None
        while selector.get_map():
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                break
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= run.output_linger:
                break  # the script is gone; what holds its outputs is reported now
            for key, _ in selector.select(min(remaining, EXIT_CHECK_SECONDS)):
                name = key.data
                chunk = os.read(key.fd, MAX_LINE_BYTES)
                if not chunk:
                    selector.unregister(key.fileobj)
                    writer.flush_partial(name, pending[name])
                    continue
                writer.feed(name, pending[name], chunk)
        still_open = {str(key.data) for key in selector.get_map().values()}
    left_open = [name.upper() for name in ("stdout", "stderr") if name in still_open]
    for name, buffered in pending.items():
        writer.flush_partial(name, buffered)
    try:
        if not left_open:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        return process.poll() is None, left_open
    finally:
        if left_open or process.returncode is None:
            _kill_group(process, run.kill_grace)
        _close(process.stdout, process.stderr)


def _kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the script's whole process group, SIGKILL whatever is left after ``grace``."""
    group = process.pid  # start_new_session made the script its group leader
    _signal_group(group, signal.SIGTERM)
    give_up = time.monotonic() + grace
    while time.monotonic() < give_up:
        process.poll()  # reap the leader so it stops counting as a member
        if not _group_alive(group):
            break
        time.sleep(0.02)
    else:
        _signal_group(group, signal.SIGKILL)
    process.wait()


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def _group_alive(group: int) -> bool:
    """Whether any live (non-zombie) process is still in ``group``."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Orphaned zombies count for killpg until PID 1 reaps them (in containers it may
    # never do so); they are dead already, so look at the real states.
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _close(*streams: IO[bytes] | None) -> None:
    for stream in streams:
        if stream is not None:
            stream.close()


class _LogTail:
    """The most recent output, at most LOG_TAIL_CHARS, for the command result."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque()
        self._size = 0

    def add(self, line: str) -> None:
        line = line[-LOG_TAIL_CHARS:]
        self._lines.append(line)
        self._size += len(line)
        while self._size > LOG_TAIL_CHARS:
            self._size -= len(self._lines.popleft())

    def text(self) -> str:
        return "".join(self._lines)


class _LineWriter:
    """Formats lines as scripts.log does and sends them to the log and ``on_output``."""

    def __init__(self, log: IO[str], run: HookRun, tail: _LogTail) -> None:
        self._log = log
        self._run = run
        self._tail = tail

    def write(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._run.clock()))
        line = f"{stamp} {text}\n"
        self._log.write(line)
        self._log.flush()
        # A broken listener must not leave a script running unsupervised.
        with contextlib.suppress(Exception):
            self._run.on_output(line)

    def output(self, name: str, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        self._tail.add(f"[{name}]{text}\n")
        self.write(f"[{name}]{text}")

    def feed(self, name: str, buffer: bytearray, chunk: bytes) -> None:
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            self.output(name, bytes(buffer[:end]))
            del buffer[: end + 1]
        while len(buffer) >= MAX_LINE_BYTES:
            self.output(name, bytes(buffer[:MAX_LINE_BYTES]))
            del buffer[:MAX_LINE_BYTES]

    def flush_partial(self, name: str, buffer: bytearray) -> None:
        if buffer:
            self.output(name, bytes(buffer))
            buffer.clear()


__all__ = [
    "DEFAULT_KILL_GRACE",
    "CommandResult",
    "HookRun",
    "ScriptError",
    "run_event",
]
