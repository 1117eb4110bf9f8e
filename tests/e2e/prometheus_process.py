"""A real Prometheus (the Debian package's binary) run by a test, on a loopback port."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port, service_missing
from tests.support import wait_until

START_SECONDS = 30.0


@contextmanager
def running_prometheus(base: Path, config_text: str) -> Iterator[tuple[str, Path]]:
    """Start Prometheus with ``config_text``, wait until it is ready; yields its URL and
    its log file, and stops it on the way out."""
    binary = shutil.which("prometheus")
    if binary is None:
        service_missing("prometheus (the Debian package 'prometheus'; scripts/install adds it)")
    config = base / "prometheus.yml"
    config.write_text(config_text)
    port = free_port()
    log = base / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={base / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_until(ready, lambda: f"prometheus to be ready:\n{log.read_text()}", START_SECONDS)
