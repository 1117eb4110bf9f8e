"""Hook scripts: real shell scripts run as the stock agent runs them."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.agent.appspec import AppSpecError, HookScript, parse
from shipyard.agent.hooks import LOG_TAIL_CHARS, CommandResult, HookRun, ScriptError, run_event
from shipyard.agent.launch import Launch, LaunchError, script_command
from tests.agent.archives import build_on_disk, link_chain_escape, path_max_escape
from tests.support import wait_until

FIXED_CLOCK = 1_700_000_000.0
STAMP = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(FIXED_CLOCK))
TIMESTAMPED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)\n")


class Archive:
    """An unpacked revision in a temporary directory, with helpers to add scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "deployment-archive"
        self.dir.mkdir(parents=True)
        self.log = root / "logs" / "scripts.log"
        self.output: list[str] = []

    def script(self, location: str, body: str, *, executable: bool = True) -> str:
        path = self.dir / location
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        path.chmod(0o755 if executable else 0o644)
        return location

    def run(
        self,
        event: str,
        *scripts: HookScript,
        env: dict[str, str] | None = None,
        kill_grace: float = 0.5,
        output_linger: float = 5.0,
    ) -> CommandResult:
        hook_run = HookRun(
            event=event,
            archive_dir=self.dir,
            log_file=self.log,
            env={**os.environ, **(env or {})},
            on_output=self.output.append,
            kill_grace=kill_grace,
            output_linger=output_linger,
            clock=lambda: FIXED_CLOCK,
        )
        return run_event(list(scripts), hook_run)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return Archive(tmp_path)


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def _wait_gone(pids: list[int], within: float = 2.0) -> None:
    wait_until(lambda: all(_gone(pid) for pid in pids), f"processes {pids} to end", within)


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


@pytest.fixture
def reap_leftovers() -> Iterator[list[int]]:
    """Pids a test started on purpose; killed at the end whatever happens."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_scripts_run_in_order_with_environment_and_stock_log_format(archive: Archive) -> None:
    first = archive.script(
        "scripts/first.sh",
        '#!/bin/sh\necho "event=$LIFECYCLE_EVENT id=$DEPLOYMENT_ID"\necho warn >&2\n',
    )
    second = archive.script("scripts/second.sh", "#!/bin/sh\nprintf 'no newline'\n")
    env = {"LIFECYCLE_EVENT": "AfterInstall", "DEPLOYMENT_ID": "d-TEST12345"}
    result = archive.run("AfterInstall", HookScript(first), HookScript(second), env=env)
    assert result == CommandResult(
        0,
        "",
        "Succeeded",
        "[stdout]event=AfterInstall id=d-TEST12345\n[stderr]warn\n[stdout]no newline\n",
    )
    log = archive.log.read_text()
    assert log == (
        f"{STAMP} LifecycleEvent - AfterInstall\n"
        f"{STAMP} Script - scripts/first.sh\n"
        f"{STAMP} [stdout]event=AfterInstall id=d-TEST12345\n"
        f"{STAMP} [stderr]warn\n"
        f"{STAMP} Script - scripts/second.sh\n"
        f"{STAMP} [stdout]no newline\n"
    )
    assert "".join(archive.output) == log


def test_log_appends_across_events_with_real_timestamps(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    location = archive.script("s.sh", "#!/bin/sh\necho hi\n")
    for event in ("BeforeInstall", "AfterInstall"):
        run = HookRun(event, archive.dir, archive.log, dict(os.environ), lambda _line: None)
        assert run_event([HookScript(location)], run).error_code == 0
    lines = archive.log.read_text().splitlines(keepends=True)
    bodies = [TIMESTAMPED.fullmatch(line).group(1) for line in lines]  # type: ignore[union-attr]
    assert bodies == [
        "LifecycleEvent - BeforeInstall",
        "Script - s.sh",
        "[stdout]hi",
        "LifecycleEvent - AfterInstall",
        "Script - s.sh",
        "[stdout]hi",
    ]


def test_no_scripts_is_a_success_without_a_log(archive: Archive) -> None:
    assert archive.run("ValidateService").error_code == ScriptError.SUCCEEDED
    assert not archive.log.exists()


def test_failing_script_stops_the_event(archive: Archive) -> None:
    bad = archive.script("bad.sh", "#!/bin/sh\necho about to fail\nexit 3\n")
    never = archive.script("never.sh", '#!/bin/sh\ntouch "$0.ran"\n')
    result = archive.run("ApplicationStart", HookScript(bad), HookScript(never))
    assert result.error_code == ScriptError.SCRIPT_FAILED
    assert result.script_name == "bad.sh"
    assert result.message == "Script at specified location: bad.sh failed with exit code 3"
    assert result.log == "[stdout]about to fail\n"
    assert not (archive.dir / "never.sh.ran").exists()


def test_script_killed_by_a_signal_reports_the_shell_exit_code(archive: Archive) -> None:
    location = archive.script("die.sh", "#!/bin/sh\nkill -KILL $$\n")
    result = archive.run("ApplicationStart", HookScript(location))
    assert result.message == "Script at specified location: die.sh failed with exit code 137"


def test_missing_script(archive: Archive) -> None:
    result = archive.run("BeforeInstall", HookScript("scripts/nope.sh"))
    assert result.error_code == ScriptError.SCRIPT_MISSING
    assert result.script_name == "scripts/nope.sh"
    assert result.message == (
        f"Script does not exist at specified location: {archive.dir.resolve()}/scripts/nope.sh"
    )


def test_non_executable_script_is_made_executable(archive: Archive) -> None:
    location = archive.script("plain.sh", "#!/bin/sh\necho ran\n", executable=False)
    result = archive.run("BeforeInstall", HookScript(location))
    assert (result.error_code, result.log) == (0, "[stdout]ran\n")
    assert os.access(archive.dir / location, os.X_OK)


def test_script_without_interpreter_line_runs_with_sh(archive: Archive) -> None:
    location = archive.script("bare.sh", "echo from sh\n")
    assert archive.run("BeforeInstall", HookScript(location)).log == "[stdout]from sh\n"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("directory", "Script at specified location: target is not a regular file"),
        ("interpreter", "Script at specified location: target cannot be executed: No such file"),
    ],
)
def test_script_that_cannot_be_executed(archive: Archive, setup: str, expected: str) -> None:
    if setup == "directory":
        (archive.dir / "target").mkdir()
    else:
        archive.script("target", "#!/nonexistent/interpreter\n")
    result = archive.run("BeforeInstall", HookScript("target"))
    assert result.error_code == ScriptError.SCRIPT_NOT_EXECUTABLE
    assert result.message.startswith(expected)


def test_stdin_is_closed(archive: Archive) -> None:
    location = archive.script(
        "read.sh", "#!/bin/sh\nif read line; then echo got; else echo eof; fi\n"
    )
    assert archive.run("BeforeInstall", HookScript(location), kill_grace=0).log == "[stdout]eof\n"


def test_timeout_kills_the_whole_process_group(archive: Archive) -> None:
    pids = archive.root / "pids"
    location = archive.script(
        "hang.sh",
        f"#!/bin/sh\nsleep 1000 &\necho $! >> {pids}\nsleep 1000 &\necho $! >> {pids}\n"
        f"echo $$ >> {pids}\necho waiting\nwait\n",
    )
    started = time.monotonic()
    result = archive.run("ValidateService", HookScript(location, timeout=1))
    assert time.monotonic() - started < 3
    assert result.error_code == ScriptError.SCRIPT_TIMED_OUT
    assert result.message == "Script at specified location: hang.sh failed to complete in 1 seconds"
    assert result.log == "[stdout]waiting\n"
    _wait_gone(_pids(pids))


def test_script_ignoring_sigterm_is_killed_after_the_grace(archive: Archive) -> None:
    pids = archive.root / "pids"
    location = archive.script(
        "stubborn.sh",
        f"#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\n"
        "while :; do sleep 0.05; done\n",
    )
    started = time.monotonic()
    result = archive.run("ValidateService", HookScript(location, timeout=1), kill_grace=0.3)
    assert time.monotonic() - started < 3
    assert result.error_code == ScriptError.SCRIPT_TIMED_OUT
    _wait_gone(_pids(pids))


def test_background_child_holding_output_does_not_hang(archive: Archive) -> None:
    pids = archive.root / "pids"
    location = archive.script(
        "leaky.sh", f"#!/bin/sh\nsleep 1000 &\necho $! > {pids}\necho started\nexit 0\n"
    )
    started = time.monotonic()
    result = archive.run("ApplicationStart", HookScript(location, timeout=1))
    assert time.monotonic() - started < 3
    assert result.error_code == ScriptError.OUTPUTS_LEFT_OPEN
    assert result.message.startswith(
        "Script at specified location: leaky.sh failed to close STDOUT and STDERR"
    )
    assert result.log == "[stdout]started\n"
    _wait_gone(_pids(pids))


def test_a_background_child_holding_output_is_reported_soon_after_the_script_exits(
    archive: Archive,
) -> None:
    """Not at the script's timeout (an hour here): ``output_linger`` after it exited."""
    pids = archive.root / "pids"
    location = archive.script(
        "leaky.sh", f"#!/bin/sh\nsleep 1000 &\necho $! > {pids}\necho started\nexit 0\n"
    )
    started = time.monotonic()
    result = archive.run("ApplicationStart", HookScript(location), output_linger=0.5)
    assert time.monotonic() - started < 3
    assert result.error_code == ScriptError.OUTPUTS_LEFT_OPEN
    assert "the script exited, but a background process it started kept it open" in (result.message)
    _wait_gone(_pids(pids))


def test_a_child_that_finishes_writing_within_the_linger_is_fine(archive: Archive) -> None:
    location = archive.script("late.sh", "#!/bin/sh\n(sleep 0.3; echo late) &\necho early\n")
    result = archive.run("ApplicationStart", HookScript(location), output_linger=3.0)
    assert result.error_code == ScriptError.SUCCEEDED
    assert result.log == "[stdout]early\n[stdout]late\n"


def test_properly_detached_daemon_keeps_running(
    archive: Archive, reap_leftovers: list[int]
) -> None:
    pids = archive.root / "pids"
    location = archive.script(
        "daemon.sh",
        f"#!/bin/sh\nnohup sleep 1000 >/dev/null 2>&1 &\necho $! > {pids}\necho launched\n",
    )
    result = archive.run("ApplicationStart", HookScript(location, timeout=5))
    reap_leftovers.extend(_pids(pids))
    assert (result.error_code, result.log) == (0, "[stdout]launched\n")
    assert not _gone(reap_leftovers[0])


def test_runas_runs_the_script_as_that_user_from_a_private_root(archive: Archive) -> None:
    assert os.geteuid() == 0, "the runas test needs root, as the agent has"
    # pytest's tmp_path is private to root, as the agent's root directory is: the
    # script still runs, from its own directory, with the user's groups and HOME.
    assert stat.S_IMODE(archive.root.parent.parent.stat().st_mode) & 0o077 == 0
    location = archive.script(
        "scripts/who am i.sh",
        '#!/bin/sh\necho "$(id -un) $(id -G) $HOME $DEPLOYMENT_ID $(pwd -P)"\n'
        'cat "$(dirname "$0")/data.txt"\n',
    )
    (archive.dir / "scripts/data.txt").write_text("beside the script\n")
    hook = HookScript(location, timeout=10, runas="nobody")
    result = archive.run("ApplicationStart", hook, env={"DEPLOYMENT_ID": "d-RUNAS0001"})
    nobody = pwd.getpwnam("nobody")
    groups = " ".join(str(g) for g in os.getgrouplist("nobody", nobody.pw_gid))
    assert (result.error_code, result.log) == (
        0,
        f"[stdout]nobody {groups} {nobody.pw_dir} d-RUNAS0001 {archive.dir / 'scripts'}\n"
        "[stdout]beside the script\n",
    )


def test_a_missing_runas_user_is_named(archive: Archive) -> None:
    location = archive.script("s.sh", f"#!/bin/sh\ntouch {archive.root}/ran\n")
    result = archive.run("ApplicationStart", HookScript(location, runas="no-such-user-x"))
    assert result.error_code == ScriptError.SCRIPT_FAILED
    expected = "runas user 'no-such-user-x' does not exist on this host"
    assert result.message == f"Script at specified location: s.sh: {expected}"
    assert expected in result.log and expected in archive.log.read_text()
    assert not (archive.root / "ran").exists()


@pytest.mark.parametrize("runas", ["-c id nobody", "-", "nobody\n", "no body", "../root"])
def test_a_runas_that_is_not_a_user_name_never_runs_the_script(
    archive: Archive, runas: str
) -> None:
    """``su`` read "-c id nobody" as an option and ran the script as root."""
    location = archive.script("s.sh", f"#!/bin/sh\nid -u > {archive.root}/ran-as\n")
    result = archive.run("ApplicationStart", HookScript(location, runas=runas))
    assert result.error_code == ScriptError.SCRIPT_FAILED
    assert f"runas {runas!r} is not a valid user name" in result.message
    assert not (archive.root / "ran-as").exists()


@pytest.mark.parametrize("runas", ["-c id nobody", "-", "no body", "../root", "nobody$x"])
def test_the_appspec_refuses_a_runas_that_is_not_a_user_name(runas: str) -> None:
    text = (
        "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n"
        f"    - {{location: s.sh, runas: '{runas}'}}\n"
    )
    with pytest.raises(AppSpecError, match="must be a user name"):
        parse(text)


def test_a_runas_script_the_user_cannot_execute_is_named(archive: Archive) -> None:
    location = archive.script("private/s.sh", "#!/bin/sh\necho hi\n")
    (archive.dir / "private/s.sh").chmod(0o700)  # root's alone
    result = archive.run("ApplicationStart", HookScript(location, runas="nobody"))
    assert (result.error_code, result.message) == (
        ScriptError.SCRIPT_NOT_EXECUTABLE,
        "Script at specified location: private/s.sh cannot be executed as nobody: "
        "Permission denied",
    )


def test_launch_for_runas_and_sudo(archive: Archive) -> None:
    path = Path("/archive/scripts/start server.sh")
    assert script_command(path, None, False) == Launch([str(path)])
    assert script_command(path, None, True) == Launch(["sudo", str(path)])
    nobody = pwd.getpwnam("nobody")
    for sudo in (False, True):  # as root, sudo adds nothing to runas
        assert script_command(path, "nobody", sudo) == Launch(
            ["./start server.sh"], "/archive/scripts", nobody
        )
    with pytest.raises(LaunchError, match="not a valid user name"):
        script_command(path, "-c id nobody", False)


def test_a_location_through_a_link_out_of_the_bundle_never_runs(
    archive: Archive, tmp_path: Path
) -> None:
    """The PATH_MAX maze and the link chain, laid out on disk as the old checks let them
    through: the script they lead to is outside the bundle and must not run."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "evil.sh").write_text(f"#!/bin/sh\ntouch {tmp_path}/ran\n")
    (victim / "evil.sh").chmod(0o755)
    build_on_disk(archive.dir, path_max_escape(victim)[:-1])  # all but the file member
    build_on_disk(archive.dir, link_chain_escape())
    maze = "/".join("abcdefghijklmnopq") + "/u/escape/evil.sh"
    chain = f"y2/{victim.name}/evil.sh"  # y2 -> x -> y/.. with y -> ".": tmp_path
    for location in (maze, chain):
        assert os.path.samefile(archive.dir / location, victim / "evil.sh")  # the kernel's view
        result = archive.run("ApplicationStart", HookScript(location, timeout=5))
        assert result.error_code == ScriptError.SCRIPT_MISSING
        assert result.message.endswith("leads outside the bundle through a symlink")
    assert not (tmp_path / "ran").exists()


def test_log_tail_keeps_the_most_recent_output(archive: Archive) -> None:
    location = archive.script(
        "chatty.sh", '#!/bin/sh\nfor i in $(seq 1 3000); do echo "line $i"; done\n'
    )
    result = archive.run("AfterInstall", HookScript(location))
    assert len(result.log) <= LOG_TAIL_CHARS
    assert result.log.endswith("[stdout]line 2999\n[stdout]line 3000\n")
    assert result.log.startswith("[stdout]line ")
    assert archive.log.read_text().count("[stdout]line ") == 3000


def test_a_broken_output_listener_does_not_stop_the_script(archive: Archive) -> None:
    location = archive.script("s.sh", "#!/bin/sh\necho one\necho two\n")

    def explode(_line: str) -> None:
        raise RuntimeError("listener gone")

    run = HookRun("AfterInstall", archive.dir, archive.log, dict(os.environ), explode)
    result = run_event([HookScript(location)], run)
    assert (result.error_code, result.log) == (0, "[stdout]one\n[stdout]two\n")
