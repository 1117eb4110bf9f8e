"""A real HAProxy laid out for weighted routing: the world the weighted contract suite
runs in on HAProxy, and the one its HTTP tests send requests through.

- route ``live``: backend ``live`` (roundrobin) over servers ``blue`` (weight 100) and
  ``green`` (weight 0), reached through the production frontend ``url``;
- its test route: backend ``live-test`` over the same servers, both declared
  ``disabled``, reached through the test frontend ``test_url``;
- route ``solo``: backend ``solo`` over ``a`` (100) and ``b`` (0), with no test route.

``blue`` and ``green`` are real web apps answering with their name; ``a`` and ``b``
point at the same apps.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.traffic import RouterConfig, get_weighted_router
from shipyard.traffic.haproxy import RuntimeApi
from shipyard.traffic.weighted import WeightedRouter
from tests.conftest import free_port
from tests.traffic.haproxy_process import HTTP_DEFAULTS, haproxy_binary, runtime_api_answers
from tests.traffic.webapp import WebApp

CONFIG = (
    """\
global
    stats socket {dir}/admin.sock level admin
    maxconn 200

"""
    + HTTP_DEFAULTS
    + """
frontend production
    bind 127.0.0.1:{port}
    default_backend live

frontend test
    bind 127.0.0.1:{test_port}
    default_backend live-test

backend live
    balance roundrobin
    server blue 127.0.0.1:{blue} weight 100
    server green 127.0.0.1:{green} weight 0

backend live-test
    balance roundrobin
    server blue 127.0.0.1:{blue} disabled
    server green 127.0.0.1:{green} disabled

backend solo
    balance roundrobin
    server a 127.0.0.1:{blue} weight 100
    server b 127.0.0.1:{green} weight 0
"""
)


@dataclass
class WeightedHAProxy:
    url: str  # the production frontend
    test_url: str  # the test frontend
    admin_address: str
    apps: dict[str, WebApp]
    process: subprocess.Popen[bytes]
    log_path: Path

    def router(self) -> WeightedRouter:
        return get_weighted_router(RouterConfig("haproxy", self.admin_address, timeout=2.0))

    def api(self) -> RuntimeApi:
        return RuntimeApi(self.admin_address, timeout=2.0)


def start_weighted_haproxy(directory: Path, apps: dict[str, WebApp]) -> WeightedHAProxy:
    """HAProxy in front of ``apps["blue"]`` and ``apps["green"]``; stop its ``process``."""
    directory.mkdir(parents=True, exist_ok=True)
    port, test_port = free_port(), free_port()
    config = directory / "haproxy.cfg"
    config.write_text(
        CONFIG.format(
            dir=directory,
            port=port,
            test_port=test_port,
            blue=apps["blue"].port,
            green=apps["green"].port,
        )
    )
    log_path = directory / "haproxy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [haproxy_binary(), "-f", str(config), "-db"], stdout=log, stderr=log
        )
    proxy = WeightedHAProxy(
        url=f"http://127.0.0.1:{port}",
        test_url=f"http://127.0.0.1:{test_port}",
        admin_address=f"unix:{directory / 'admin.sock'}",
        apps=apps,
        process=process,
        log_path=log_path,
    )
    if not runtime_api_answers(proxy.admin_address, process):
        process.kill()
        process.wait()
        raise RuntimeError(f"haproxy did not start:\n{log_path.read_text(errors='replace')}")
    return proxy
