"""``shipyard server`` as a real process for the CLI tests, with its stderr in a file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import free_port
from tests.test_cli import cli_env, wait_for_port


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    env: dict[str, str]  # for the CLI: credentials and SHIPYARD_ENDPOINT
    log: Path  # the server's stderr


@contextmanager
def server_process(tmp_path: Path, *flags: str) -> Iterator[ServerProcess]:
    data_dir, port = tmp_path / "data", free_port()
    env = cli_env(data_dir=data_dir)
    env["SHIPYARD_ENDPOINT"] = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.err"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard", "server", "--data-dir", str(data_dir),
             "--port", str(port), *flags],
            env=env, stdout=subprocess.DEVNULL, stderr=log_file, text=True,
        )  # fmt: skip
    try:
        wait_for_port(port, process)
        yield ServerProcess(process, env, log)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
