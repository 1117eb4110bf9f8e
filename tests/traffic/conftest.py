"""A real HAProxy in front of real web apps, and the harnesses the contract suite runs on.

Each test that asks for ``haproxy`` gets its own HAProxy process (``haproxy -f cfg -db``,
a few milliseconds to start) in front of three fresh ``WebApp``s, so no test sees what
another left behind (a server in maint, a request still in flight). Backend ``web``:

- ``s1``, ``s2``: HTTP health check on ``/health`` every 200 ms (fall 2, rise 1);
- ``s3``: no health check.

A request carrying the cookie ``SRV=<server>`` sticks to that server (HAProxy sends such
"persistent" requests even to a draining server); other requests go round robin.
"""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from shipyard.traffic import RouterConfig, TrafficRouter, get_router
from shipyard.traffic.memory import MemoryRouter
from shipyard.traffic.weighted import WeightedRouter
from shipyard.traffic.weighted_memory import MemoryWeightedRouter
from tests.conftest import free_port
from tests.traffic.haproxy_process import HTTP_DEFAULTS, haproxy_binary, runtime_api_answers
from tests.traffic.webapp import WebApp
from tests.traffic.weighted_haproxy import WeightedHAProxy, start_weighted_haproxy

SERVERS = ("s1", "s2", "s3")
CHECKED = ("s1", "s2")
CHECK = "check inter 200ms fall 2 rise 1"

CONFIG = (
    """\
global
    stats socket {dir}/admin.sock level admin
    stats socket {dir}/user.sock level user
    stats socket ipv4@127.0.0.1:{api_port} level admin
    maxconn 200

"""
    + HTTP_DEFAULTS
    + """\
    timeout check 500ms

frontend fe
    bind 127.0.0.1:{port}
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /health
    cookie SRV
{servers}
"""
)


@dataclass
class Response:
    status: int
    body: str


def get(url: str, *, cookie: str = "", timeout: float = 10.0) -> Response:
    """One GET, never through a proxy from the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read().decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read().decode())


@dataclass
class HAProxy:
    """A running HAProxy and the apps behind it."""

    directory: Path
    url: str  # the frontend, e.g. http://127.0.0.1:PORT
    admin_address: str  # unix:.../admin.sock
    user_address: str  # unix:.../user.sock (level user: may look, may not change)
    tcp_address: str  # tcp:127.0.0.1:PORT (level admin)
    apps: dict[str, WebApp]
    process: subprocess.Popen[bytes]

    def router(self, timeout: float = 2.0) -> TrafficRouter:
        return get_router(RouterConfig("haproxy", self.admin_address, timeout))

    def log(self) -> str:
        return (self.directory / "haproxy.log").read_text(errors="replace")


def start_haproxy(directory: Path, apps: dict[str, WebApp]) -> HAProxy:
    directory.mkdir(parents=True, exist_ok=True)
    port, api_port = free_port(), free_port()
    lines = []
    for name, app in apps.items():
        check = f" {CHECK}" if name in CHECKED else ""
        lines.append(f"    server {name} 127.0.0.1:{app.port}{check} cookie {name}")
    config = directory / "haproxy.cfg"
    config.write_text(
        CONFIG.format(dir=directory, port=port, api_port=api_port, servers="\n".join(lines))
    )
    with (directory / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [haproxy_binary(), "-f", str(config), "-db"], stdout=log, stderr=log
        )
    proxy = HAProxy(
        directory=directory,
        url=f"http://127.0.0.1:{port}",
        admin_address=f"unix:{directory / 'admin.sock'}",
        user_address=f"unix:{directory / 'user.sock'}",
        tcp_address=f"tcp:127.0.0.1:{api_port}",
        apps=apps,
        process=process,
    )
    if not runtime_api_answers(proxy.admin_address, process):
        stop_haproxy(proxy)
        raise RuntimeError(f"haproxy did not start:\n{proxy.log()}")
    return proxy


def stop_haproxy(proxy: HAProxy) -> None:
    proxy.process.terminate()
    try:
        proxy.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proxy.process.kill()
        proxy.process.wait()


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[HAProxy]:
    """HAProxy on an ephemeral port in front of three fresh web apps (s1, s2, s3)."""
    haproxy_binary()
    apps = {name: WebApp(name).start() for name in SERVERS}
    proxy = start_haproxy(tmp_path / "haproxy", apps)
    try:
        yield proxy
    finally:
        stop_haproxy(proxy)
        for app in apps.values():
            app.stop()


# -- harnesses: the same scenario driven on each router ------------------------------------


@dataclass
class Held:
    """A request held open on one server for ``seconds``, from ``started`` on the clock."""

    server: str
    started: float
    seconds: float
    response: list[Response] = field(default_factory=list)  # filled when it completes


class Harness(Protocol):
    router: TrafficRouter

    def clock(self) -> float: ...

    def hold(self, server: str, seconds: float) -> Held:
        """Start a request on ``server`` that takes ``seconds``; return once it is there."""
        ...

    def take_down(self, server: str) -> None:
        """Make the server's health check fail from now on."""
        ...

    def settle(self) -> None:
        """Let every held request finish."""
        ...


class FakeTime:
    """A clock that moves only when someone sleeps, running what falls due on the way."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._due: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def at(self, when: float, action: Callable[[], None]) -> None:
        self._due.append((when, action))
        self._due.sort(key=lambda item: item[0])

    def sleep(self, seconds: float) -> None:
        self.advance_to(self.now + seconds)

    def advance_to(self, when: float) -> None:
        while self._due and self._due[0][0] <= when:
            due, action = self._due.pop(0)
            self.now = max(self.now, due)
            action()
        self.now = max(self.now, when)


class MemoryHarness:
    def __init__(self) -> None:
        self.time = FakeTime()
        self.memory = MemoryRouter(clock=self.time.clock, sleep=self.time.sleep)
        for name in SERVERS:
            self.memory.add_server("web", name, healthy=True if name in CHECKED else None)
        self.router: TrafficRouter = self.memory
        self._sessions = dict.fromkeys(SERVERS, 0)
        self._last_end = self.time.now

    def clock(self) -> float:
        return self.time.clock()

    def hold(self, server: str, seconds: float) -> Held:
        held = Held(server, self.time.now, seconds)
        self._add_session(server, 1)

        def finish() -> None:
            self._add_session(server, -1)
            held.response.append(Response(200, server))

        self._last_end = max(self._last_end, held.started + seconds)
        self.time.at(held.started + seconds, finish)
        return held

    def take_down(self, server: str) -> None:
        self.memory.set_health("web", server, False)

    def settle(self) -> None:
        self.time.advance_to(self._last_end)

    def _add_session(self, server: str, delta: int) -> None:
        self._sessions[server] += delta
        self.memory.set_sessions("web", server, self._sessions[server])


class HAProxyHarness:
    def __init__(self, proxy: HAProxy) -> None:
        self.proxy = proxy
        self.router = proxy.router()
        self._threads: list[threading.Thread] = []
        self._holding = dict.fromkeys(SERVERS, 0)

    def clock(self) -> float:
        return time.monotonic()

    def hold(self, server: str, seconds: float) -> Held:
        held = Held(server, self.clock(), seconds)
        url = f"{self.proxy.url}/sleep/{round(seconds * 1000)}"

        def request() -> None:
            held.response.append(get(url, cookie=f"SRV={server}"))

        thread = threading.Thread(target=request, daemon=True)
        thread.start()
        self._threads.append(thread)
        self._holding[server] += 1
        self.proxy.apps[server].wait_in_flight(self._holding[server])
        return held

    def take_down(self, server: str) -> None:
        self.proxy.apps[server].stop()

    def settle(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)


@pytest.fixture(params=["memory", "haproxy"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The contract suite's world, once on the memory router and once on real HAProxy."""
    chosen: Harness
    if request.param == "memory":
        chosen = MemoryHarness()
    else:
        chosen = HAProxyHarness(request.getfixturevalue("haproxy"))
    try:
        yield chosen
    finally:
        chosen.settle()


# -- the weighted router contract's world: routes "live" (blue, green; with a test route)
# and "solo" (a, b; without one), blue and a holding all the traffic --------------------

WEIGHTED_KINDS = ("memory", "haproxy")  # every key of traffic.WEIGHTED_ROUTERS


@pytest.fixture
def weighted_haproxy(tmp_path: Path) -> Iterator[WeightedHAProxy]:
    """HAProxy with the weighted routes, in front of two fresh web apps (blue, green)."""
    haproxy_binary()
    apps = {name: WebApp(name).start() for name in ("blue", "green")}
    try:
        proxy = start_weighted_haproxy(tmp_path / "haproxy", apps)
        try:
            yield proxy
        finally:
            proxy.process.terminate()
            proxy.process.wait(timeout=5)
    finally:
        for app in apps.values():
            app.stop()


@pytest.fixture(params=WEIGHTED_KINDS)
def weighted(request: pytest.FixtureRequest) -> WeightedRouter:
    """The weighted contract suite's router, once per implementation."""
    if request.param == "haproxy":
        proxy: WeightedHAProxy = request.getfixturevalue("weighted_haproxy")
        return proxy.router()
    memory = MemoryWeightedRouter()
    memory.add_route("live", ["blue", "green"])
    memory.add_route("solo", ["a", "b"], test_route=False)
    return memory
