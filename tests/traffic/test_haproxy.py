"""What only a real HAProxy shows: real requests, real health checks, a real socket.

The contract suite (test_contract.py) already runs every router behaviour on HAProxy;
these tests look at the traffic itself and at HAProxy's particular ways.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from shipyard.traffic import RouterConfig, ServerState, TrafficError, TrafficRouter, get_router
from tests.conftest import free_port, service_missing
from tests.support import wait_until
from tests.traffic.conftest import HAProxy, Response, get, stop_haproxy


def state(router: TrafficRouter, server: str) -> ServerState:
    [found] = [s for s in router.describe("web") if s.server == server]
    return found


def served_by(proxy: HAProxy, count: int) -> set[str]:
    """Send ``count`` plain requests through HAProxy; which servers answered them."""
    answers = [get(proxy.url + "/") for _ in range(count)]
    assert {a.status for a in answers} == {200}
    return {a.body for a in answers}


def test_drain_waits_for_the_slow_request_and_sends_new_ones_elsewhere(
    haproxy: HAProxy,
) -> None:
    router = haproxy.router()
    slow: list[Response] = []
    request = threading.Thread(
        target=lambda: slow.append(get(haproxy.url + "/sleep/800", cookie="SRV=s1"))
    )
    request.start()
    haproxy.apps["s1"].wait_in_flight(1)
    assert state(router, "s1").sessions == 1
    blocked_at: list[float] = []

    def block() -> None:
        router.block("web", "s1", drain_timeout=5)
        blocked_at.append(time.monotonic())

    blocking = threading.Thread(target=block)
    blocking.start()
    # Tight polling: the drain lasts only as long as the slow request (800 ms).
    wait_until(lambda: state(router, "s1").admin == "drain", "s1 draining", 5, every=0.01)

    assert served_by(haproxy, 6) == {"s2", "s3"}
    blocking.join(timeout=10)
    request.join(timeout=10)

    [(path, finished)] = [c for c in haproxy.apps["s1"].completed if c[0] != "/"]
    assert path == "/sleep/800"
    assert blocked_at[0] >= finished
    assert slow == [Response(200, "s1")]
    assert state(router, "s1").admin == "maint"


def test_allow_sends_traffic_again_after_a_fresh_health_check(haproxy: HAProxy) -> None:
    router = haproxy.router()
    router.block("web", "s1", drain_timeout=1)
    assert served_by(haproxy, 6) == {"s2", "s3"}

    router.allow("web", "s1", health_timeout=5)

    assert served_by(haproxy, 6) == {"s1", "s2", "s3"}


def test_allow_does_not_trust_the_health_from_before_maintenance(haproxy: HAProxy) -> None:
    # Left to itself, HAProxy calls a server UP the moment it leaves maintenance, from the
    # health it had before; the app behind it may have died meanwhile (a failed deploy).
    router = haproxy.router()
    router.block("web", "s1", drain_timeout=1)
    app = haproxy.apps["s1"]
    app.stop()

    with pytest.raises(TrafficError, match=r"last health check: .*Connection refused"):
        router.allow("web", "s1", health_timeout=0.8)
    assert (state(router, "s1").admin, state(router, "s1").healthy) == ("ready", False)

    app.start()  # back on the same port
    router.allow("web", "s1", health_timeout=5)
    assert state(router, "s1").healthy is True


def test_weight_zero_takes_no_new_requests(haproxy: HAProxy) -> None:
    router = haproxy.router()
    router.set_weight("web", "s1", 0)
    assert served_by(haproxy, 6) == {"s2", "s3"}

    router.set_weight("web", "s1", 1)
    assert served_by(haproxy, 6) == {"s1", "s2", "s3"}


def test_the_runtime_api_over_tcp(haproxy: HAProxy) -> None:
    over_tcp = get_router(RouterConfig("haproxy", haproxy.tcp_address, timeout=2))

    over_tcp.block("web", "s2", drain_timeout=1)

    assert state(haproxy.router(), "s2").admin == "maint"
    assert over_tcp.describe("web") == haproxy.router().describe("web")


def test_a_socket_without_admin_level_cannot_change_anything(haproxy: HAProxy) -> None:
    router = get_router(RouterConfig("haproxy", haproxy.user_address, timeout=2))

    with pytest.raises(TrafficError, match="HAProxy refused 'set server web/s1 state drain'"):
        router.block("web", "s1", drain_timeout=1)
    assert state(haproxy.router(), "s1").admin == "ready"


def test_unreachable_runtime_api(haproxy: HAProxy) -> None:
    missing = get_router(RouterConfig("haproxy", f"unix:{haproxy.directory}/none.sock"))
    with pytest.raises(TrafficError, match=r"cannot reach .*none.sock: No such file"):
        missing.describe("web")

    refused = get_router(RouterConfig("haproxy", f"tcp:127.0.0.1:{free_port()}"))
    with pytest.raises(TrafficError, match=r"cannot reach .*: Connection refused"):
        refused.allow("web", "s1", health_timeout=1)

    stop_haproxy(haproxy)  # the socket file stays; nobody listens on it any more
    with pytest.raises(TrafficError, match="cannot reach the HAProxy runtime API at unix:"):
        haproxy.router().block("web", "s1", drain_timeout=1)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_runtime_api_that_does_not_answer(silent_listener: int) -> None:
    router = get_router(RouterConfig("haproxy", f"tcp:127.0.0.1:{silent_listener}", 0.2))
    started = time.monotonic()

    with pytest.raises(TrafficError, match=r"did not answer 'show servers state web' within 0.2 s"):
        router.describe("web")

    assert time.monotonic() - started < 2


def test_block_and_allow_under_load_lose_no_request(haproxy: HAProxy) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        service_missing("wrk (Debian package wrk; scripts/install installs it)")
        return
    load = subprocess.Popen(
        [wrk, "-t2", "-c8", "-d2s", "--latency", haproxy.url + "/sleep/5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    router = haproxy.router()
    try:
        wait_until(lambda: state(router, "s1").sessions > 0, "load on s1", 5, every=0.01)
        router.block("web", "s1", drain_timeout=2)
        assert state(router, "s1").sessions == 0
        served_before_allow = len(haproxy.apps["s1"].completed)
        router.allow("web", "s1", health_timeout=2)
    finally:
        report, _ = load.communicate(timeout=10)

    assert load.returncode == 0, report
    assert re.search(r"(\d+) requests in", report), report
    assert "Non-2xx" not in report, report
    assert "Socket errors" not in report, report
    assert len(haproxy.apps["s1"].completed) > served_before_allow  # back in the pool
