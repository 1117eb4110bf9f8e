"""Starting a real HAProxy for tests: finding the binary, and waiting until its
runtime API answers. Shared by the traffic-router tests and the HAProxy fleet of the
end-to-end tests."""

from __future__ import annotations

import shutil
import subprocess
import time

from shipyard.traffic import TrafficError
from shipyard.traffic.haproxy import RuntimeApi
from tests.conftest import service_missing

START_SECONDS = 10.0

# The defaults section every test HAProxy shares: HTTP, and timeouts short enough that
# a dead app shows within a test.
HTTP_DEFAULTS = """\
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        service_missing("haproxy (Debian package haproxy; scripts/install installs it)")
        raise AssertionError("unreachable")
    return found


def runtime_api_answers(admin_address: str, process: subprocess.Popen[bytes]) -> bool:
    """Wait until HAProxy answers on ``admin_address``; False when it exited or did not
    answer within START_SECONDS. (The socket file appears a moment before HAProxy
    listens on it, so its existence proves nothing.)"""
    api = RuntimeApi(admin_address, timeout=1)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            api.run("show info")
            return True
        except TrafficError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
