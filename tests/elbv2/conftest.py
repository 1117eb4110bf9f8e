"""A live server with the embedded ELBv2 (real HAProxy per load balancer); every
HAProxy it started is stopped with it. Health-check and deregistration seconds last
minute_seconds/60 = 1/50 s here, so a 5 s check interval is 100 ms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.traffic.haproxy_process import haproxy_binary

TIME_SCALE_MINUTE = 1.2  # minute_seconds: 1 s of a health check lasts 20 ms


@pytest.fixture
def elb_server(tmp_path: Path, database: str) -> Iterator[LiveServer]:
    """On SQLite, or on both databases for a test marked ``on_both_databases``."""
    haproxy_binary()  # skips loudly (fails under CI) without HAProxy
    yield from start_live_server(
        tmp_path / "s", database, elb_keep_running=False, minute_seconds=TIME_SCALE_MINUTE
    )


@pytest.fixture
def elbv2(elb_server: LiveServer) -> Any:
    return elb_server.client("elbv2")
