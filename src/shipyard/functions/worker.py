"""One worker: a process running one version of a function, and its Runtime API.

Python runtimes run AWS's runtime interface client (``python -m awslambdaric HANDLER``)
with the server's own interpreter, so boto3 is importable as on Lambda; ``provided*``
runtimes execute the package's ``bootstrap``. The process runs in its own session (a
timeout kills the whole group), as the worker user when the server is root, with the
function's environment, Lambda's reserved variables and the worker's own credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.functions.names import PYTHON_RUNTIMES
from shipyard.functions.runtime_api import Invocation, RuntimeApi

log = logging.getLogger("shipyard.functions")

MAX_LOG_TAIL = 4096
SETPRIV = "/usr/bin/setpriv"
TIMED_OUT = b"<timed out>"  # compared by identity: no runtime can post this object


@dataclass(frozen=True)
class FunctionSpec:
    """What the host needs to run one version of a function."""

    name: str
    version: str
    # Changes whenever the version's code or configuration does: warm workers of an
    # older revision are never reused.
    revision_id: str
    runtime: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    code_sha256: str
    package_path: Path

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.revision_id)


@dataclass(frozen=True)
class Launch:
    """How to start workers (from the server's config)."""

    python: str
    endpoint_url: str
    region: str
    user: tuple[int, int] | None  # (uid, gid) to run as; None keeps the server's


@dataclass(frozen=True)
class Outcome:
    body: bytes
    is_error: bool
    log_tail: bytes = b""
    request_id: str = ""


@dataclass(eq=False)
class Worker:
    spec: FunctionSpec
    api: RuntimeApi
    process: asyncio.subprocess.Process
    access_key_id: str
    scratch: Path  # the worker user's HOME and TMPDIR
    started: float
    last_used: float
    output: bytearray = field(default_factory=bytearray)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def invoke(self, invocation: Invocation, *, want_log: bool = False) -> Outcome:
        """Run one invocation; on timeout the worker is killed."""
        self.output.clear()
        self.api.submit(invocation)
        # A timer rather than wait_for: no extra task per invocation on the hot path.
        timer = asyncio.get_running_loop().call_later(
            self.spec.timeout, invocation.resolve, TIMED_OUT, True
        )
        body, is_error = await invocation.result
        timer.cancel()
        if body is TIMED_OUT:
            await self.kill()
            message = (
                f"RequestId: {invocation.request_id} Error: Task timed out after "
                f"{self.spec.timeout:.2f} seconds"
            )
            body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode()
            tail = bytes(self.output[-MAX_LOG_TAIL:])
            return Outcome(body, True, tail, invocation.request_id)
        if want_log:
            # The runtime wrote its log lines before it answered, so they are in the pipe:
            # a few turns of the loop let the reader take them in.
            for _ in range(3):
                await asyncio.sleep(0)
        tail = bytes(self.output[-MAX_LOG_TAIL:])
        return Outcome(body, is_error, tail, invocation.request_id)

    async def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.api.stop()

    async def _read_output(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(65536):
            self.output += chunk
            if len(self.output) > 4 * MAX_LOG_TAIL:
                del self.output[:-MAX_LOG_TAIL]

    async def _watch(self) -> None:
        """When the process exits, answer whatever it left unanswered."""
        code = await self.process.wait()
        if code > 0:  # exited by itself (a kill by the host is a negative code)
            tail = bytes(self.output[-1024:]).decode("utf-8", "replace")
            log.warning(
                "function %s:%s worker exited with status %d: %s",
                self.spec.name,
                self.spec.version,
                code,
                tail,
            )
        for invocation in self.api.unfinished():
            body = (
                self.api.init_error
                or json.dumps(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime "
                        f"exited with error: {_exit_status(code)}",
                    }
                ).encode()
            )
            invocation.resolve(body, True)


def _exit_status(code: int) -> str:
    return f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


async def start_worker(
    spec: FunctionSpec,
    launch: Launch,
    code_dir: Path,
    scratch: Path,
    credentials: tuple[str, str],
    now: float,
) -> Worker:
    api = RuntimeApi()
    address = await api.start()
    env = _environment(spec, launch, code_dir, scratch, address, credentials)
    if spec.runtime in PYTHON_RUNTIMES:
        argv = [launch.python, "-m", "awslambdaric", spec.handler]
    else:
        argv = [str(code_dir / "bootstrap")]
    if launch.user is not None:
        # uvloop's subprocess_exec takes no user/group: util-linux's setpriv drops them
        # (and every supplementary group) just before exec.
        uid, gid = launch.user
        argv = [SETPRIV, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=code_dir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError:
        await api.stop()
        raise
    worker = Worker(spec, api, process, credentials[0], scratch, now, now)
    worker._tasks = [
        asyncio.create_task(worker._read_output()),
        asyncio.create_task(worker._watch()),
    ]
    return worker


def _environment(
    spec: FunctionSpec,
    launch: Launch,
    code_dir: Path,
    scratch: Path,
    runtime_api: str,
    credentials: tuple[str, str],
) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/opt/bin",
        "LANG": "en_US.UTF-8",
        "TZ": "UTC",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        # Not reserved on Lambda either: the function's own variables may override it.
        "AWS_ENDPOINT_URL": launch.endpoint_url,
    }
    env.update(spec.environment)
    env.update(
        {
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(code_dir),
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_REGION": launch.region,
            "AWS_DEFAULT_REGION": launch.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": scratch.name,
            "AWS_ACCESS_KEY_ID": credentials[0],
            "AWS_SECRET_ACCESS_KEY": credentials[1],
        }
    )
    if spec.runtime in PYTHON_RUNTIMES:
        env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
        env["PYTHONPATH"] = str(code_dir)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
