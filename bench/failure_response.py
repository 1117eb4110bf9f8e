"""Failure response: how long Shipyard takes from a host dying (or an alarm firing) to
the deployment being stopped and the rollback finished, on a 5-host deployment.

Run: .venv/bin/python bench/failure_response.py [--repeat 3] [--agent-timeout 2]

An embedded server on SQLite and five real agent processes (no mount isolation). The
deployment group deploys one host at a time (so one lost host fails the deployment),
rolls back automatically on DEPLOYMENT_FAILURE and DEPLOYMENT_STOP_ON_ALARM, and
watches an HTTP alarm pointed at a tiny local HTTP server the bench controls. A good
revision (no scripts) is deployed first; then each run deploys a bad revision whose
BeforeInstall sleeps ``--hook-seconds`` on every host, and when the third host's hook
starts, one of these happens:

- host dies: the agent's process group is killed (kill -9) and stays dead until the
  server has failed the deployment; it is then started again (the host comes back) so
  the rollback, which goes first to the unhealthy host, can run there. Detection is
  the heartbeat: ``agent_timeout`` after the agent's last poll.
- agent crash, restarted: the agent is killed and started again at once, as a service
  manager would; the new process reports the interrupted event failed.
- alarm: the alarm endpoint starts answering 500; it keeps doing so until the rollback
  has finished, as a health check of a broken release would.

Figures, per case the median of ``--repeat`` runs (client-side clock, polled every 5 ms):
``detect`` from the fault to the deployment reported Failed/Stopped; ``to rollback`` from
there to the rollback deployment's createTime (server clock); ``rollback`` from the
rollback's creation to it reported Succeeded; ``total`` from the fault to that.
"""

from __future__ import annotations

import argparse
import configparser
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from shipyard.client import ShipyardClient
from shipyard.config import ServerConfig
from shipyard.localfleet import LocalHost, prepare_host, stop_all
from shipyard.server.main import EmbeddedServer, start_embedded

HOSTS = 5
VICTIM_POSITION = 3  # the fault hits the third host to start its BeforeInstall
APP, GROUP, ALARM = "bench", "fleet", "bench-health"
POLL_INTERVAL = 0.005
TERMINAL = ("Succeeded", "Failed", "Stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def zip_bundle(appspec: str, scripts: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        for name, text in scripts.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def bad_bundle(markers: Path, hook_seconds: float) -> bytes:
    """BeforeInstall notes which host started it (one line per host), then sleeps."""
    script = f'#!/bin/sh\necho "$BENCH_HOST" >> {markers}/"$DEPLOYMENT_ID"\nsleep {hook_seconds}\n'
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n"
        "  BeforeInstall:\n    - location: before_install.sh\n      timeout: 120\n"
    )
    return zip_bundle(appspec, {"before_install.sh": script})


class AlarmEndpoint:
    """A health URL answering 200, or 500 once ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(500 if endpoint.broken.is_set() else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per alarm poll would drown the figures

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/health"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


