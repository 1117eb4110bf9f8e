"""A real HAProxy in front of a fleet of real agents, each host running a small web app
that Shipyard deploys.

Shared by tests/e2e/test_traffic_haproxy.py and bench/zero_downtime.py.

- ``web_fleet(directory, servers)``: HAProxy with one server per host (named exactly as
  the instance, checked every 100 ms), then a Shipyard server whose traffic router drives
  that HAProxy; hosts are added later with ``WebFleet.add_hosts``. Hosts share the
  network namespace, so each app gets its own 127.0.0.1 port, written with the host's
  name into the host's private view of /srv/shipyard-e2e (``port``, ``name``).
- ``app_bundle(version, ...)``: a revision whose appspec installs a stdlib web app
  ("/" answers "<version> <host>", "/health" 200) and stops it (ApplicationStop), starts
  it detached (ApplicationStart) and waits for its /health (ValidateService). The app
  keeps its pid under /srv/shipyard-e2e/run; ``web_fleet`` ends every app on the way out.
- ``create_in_place_group``, ``make_blue_green``, ``deploy``, ``info``: application
  ``shop``, group ``web``, load balancer target group ``web`` (the HAProxy backend).
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.demo.fleet import LocalHost, stop_all
from shipyard.traffic import RouterConfig, TrafficRouter, get_router
from shipyard.traffic.haproxy import RuntimeApi
from tests.conftest import free_port
from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    Uploader,
    blue_green_members,
    fleet_on_server,
    make_bundle,
    make_uploader,
)
from tests.traffic.haproxy_process import haproxy_binary, runtime_api_answers

BACKEND = "web"
RUN = SHARED_ROOT / "run"  # the app's pid file and log, outside the installed files
ROLE = "arn:aws:iam::000000000000:role/shipyard"

HAPROXY_CONFIG = """\
global
    stats socket {directory}/admin.sock level admin
    maxconn 4000

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout check 500ms

frontend fe
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk GET /health
{servers}
"""
# show stat columns: connection errors, response errors, retries, redispatches
TROUBLE = ("econ", "eresp", "wretr", "wredis")
SERVER_LINE = "    server {name} 127.0.0.1:{port} check inter 100ms fall 2 rise 1"


@dataclass
class Balancer:
    """A running HAProxy: frontend ``url``, runtime API at ``admin_address``."""

    directory: Path
    url: str
    admin_address: str
    ports: dict[str, int]  # server (instance) name -> the port its app listens on
    process: subprocess.Popen[bytes]

    def router(self) -> TrafficRouter:
        return get_router(RouterConfig("haproxy", self.admin_address, timeout=2.0))

    def log(self) -> str:
        return (self.directory / "haproxy.log").read_text(errors="replace")

    def trouble(self) -> dict[str, int]:
        """What HAProxy hid from clients or could not: connection and response errors,
        retries and redispatches, summed over the backend's servers since it started.
        With traffic control working, a deployment adds nothing here."""
        answer = RuntimeApi(self.admin_address, timeout=2).run(f"show stat {BACKEND} 4 -1")
        rows = list(csv.DictReader(answer.removeprefix("# ").splitlines()))
        return {key: sum(int(row[key] or 0) for row in rows) for key in TROUBLE}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_balancer(directory: Path, servers: Sequence[str]) -> Balancer:
    """HAProxy with one checked server per name, each on a fresh loopback port."""
    binary = haproxy_binary()
    directory.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in servers}
    port = free_port()
    lines = "\n".join(SERVER_LINE.format(name=n, port=p) for n, p in ports.items())
    config = directory / "haproxy.cfg"
    config.write_text(
        HAPROXY_CONFIG.format(directory=directory, port=port, backend=BACKEND, servers=lines)
    )
    with (directory / "haproxy.log").open("wb") as log:
        process = subprocess.Popen([binary, "-f", str(config), "-db"], stdout=log, stderr=log)
    balancer = Balancer(
        directory, f"http://127.0.0.1:{port}", f"unix:{directory / 'admin.sock'}", ports, process
    )
    if not runtime_api_answers(balancer.admin_address, process):
        balancer.stop()
        raise RuntimeError(f"haproxy did not start:\n{balancer.log()}")
    return balancer


# ---- the fleet -------------------------------------------------------------------------


@dataclass
class WebFleet:
    fleet: Fleet
    balancer: Balancer
    upload: Uploader

    @property
    def cd(self) -> Any:
        return self.fleet.cd

    def revision(self, version: str, **options: Any) -> dict[str, Any]:
        """Upload the web app at ``version`` (``app_bundle`` options); its S3 revision."""
        return self.upload(f"{version}.zip", app_bundle(version, **options))

    def add_hosts(self, names: list[str], tags: dict[str, str]) -> None:
        """Register and start hosts; each learns its name and app port from its own view."""
        self.fleet.add_hosts(names, tags, start=False)
        for name in names:
            host = self.fleet.host(name)
            host.view(SHARED_ROOT / "port").write_text(str(self.balancer.ports[name]))
            host.view(SHARED_ROOT / "name").write_text(name)
            host.view(RUN).mkdir(parents=True, exist_ok=True)
            host.start()

    def servers(self) -> dict[str, tuple[str, bool | None]]:
        """HAProxy's view: server -> (admin state, health)."""
        return {s.server: (s.admin, s.healthy) for s in self.balancer.router().describe(BACKEND)}


@contextlib.contextmanager
def web_fleet(directory: Path, servers: Sequence[str]) -> Iterator[WebFleet]:
    """HAProxy for ``servers``, and a Shipyard server driving it (drain 5 s, health 10 s).

    On the way out: the agents, the apps they started, the server, then HAProxy."""
    balancer = start_balancer(directory / "haproxy", servers)
    fleet_context = contextlib.contextmanager(fleet_on_server)
    try:
        with fleet_context(
            directory,
            traffic_router="haproxy",
            traffic_address=balancer.admin_address,
            drain_seconds=5,
            health_seconds=10,
        ) as fleet:
            try:
                yield WebFleet(fleet, balancer, make_uploader(fleet.server))
            finally:
                stop_all(fleet.hosts)  # first, so that no agent starts an app any more
                stop_apps(fleet.hosts)
    finally:
        balancer.stop()


def stop_apps(hosts: Sequence[LocalHost], timeout: float = 5.0) -> None:
    """End every app a host ever started (they run detached from their agent)."""
    pids: set[int] = set()
    for host in hosts:
        with contextlib.suppress(FileNotFoundError, ValueError):
            pids.update(int(p) for p in host.view(RUN / "pids").read_text().split())
    running = [pid for pid in pids if _is_app(pid)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_is_app(pid) for pid in running) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in running:
        if _is_app(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _is_app(pid: int) -> bool:
    """Whether ``pid`` is still one of our apps (alive, not a zombie, running app.py)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z" and b"app/app.py" in cmdline


# ---- groups ----------------------------------------------------------------------------


def create_in_place_group(
    web: WebFleet,
    tags: dict[str, str],
    *,
    config: str = "CodeDeployDefault.OneAtATime",
    rollback: bool = False,
) -> None:
    """Application ``shop``, group ``web``: in place, with traffic control through HAProxy."""
    cd = web.cd
    cd.create_application(applicationName="shop")
    extra: dict[str, Any] = {}
    if rollback:
        extra["autoRollbackConfiguration"] = {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}
    cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn=ROLE,
        deploymentConfigName=config,
        onPremisesInstanceTagFilters=[
            {"Key": k, "Value": v, "Type": "KEY_AND_VALUE"} for k, v in tags.items()
        ],
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": BACKEND}]},
        **extra,
    )


def make_blue_green(web: WebFleet, *, rollback: bool = False) -> None:
    """Turn group ``web`` into a blue/green group: 60-minute ready and termination waits."""
    web.cd.update_deployment_group(
        applicationName="shop",
        currentDeploymentGroupName="web",
        **blue_green_members(rollback=rollback),
    )


def deploy(web: WebFleet, revision: dict[str, Any], **extra: Any) -> str:
    result = web.cd.create_deployment(
        applicationName="shop", deploymentGroupName="web", revision=revision, **extra
    )
    return str(result["deploymentId"])


def info(web: WebFleet, deployment_id: str) -> dict[str, Any]:
    found: dict[str, Any] = web.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return found


# ---- the web app and its revision ------------------------------------------------------

APP = '''\
"""A tiny web app: "/" answers the revision and host name, "/health" says if it is well."""
import os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = "{root}"
VERSION = "{version}"
NAME = open(ROOT + "/name").read().strip()
PORT = int(open(ROOT + "/port").read())
HEALTHY = NAME not in {unhealthy_on!r}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            status, body = (200, b"ok") if HEALTHY else (500, b"broken")
        else:
            status, body = 200, (VERSION + " " + NAME).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        pass  # health checks hang up early


server = Server(("127.0.0.1", PORT), Handler)
with open(ROOT + "/run/app.pid", "w") as f:
    f.write(str(os.getpid()))
with open(ROOT + "/run/pids", "a") as f:
    f.write(str(os.getpid()) + "\\n")
# A safety net: an app never outlives the run that started it by long.
timer = threading.Timer({lifetime}, os._exit, (0,))
timer.daemon = True
timer.start()
server.serve_forever()
'''

STOP = """\
#!/bin/sh
# Stop the running app, if any, and wait until it has exited.
pidfile={run}/app.pid
[ -f "$pidfile" ] || {{ echo "no app running"; exit 0; }}
pid=$(cat "$pidfile")
alive() {{ [ -r /proc/$pid/stat ] && ! grep -q ') Z ' /proc/$pid/stat; }}
if alive && grep -q app.py /proc/$pid/cmdline; then
  kill "$pid"
  i=0
  while alive; do
    i=$((i + 1))
    [ $i -eq 100 ] && kill -9 "$pid"
    [ $i -gt 200 ] && {{ echo "app $pid did not exit"; exit 1; }}
    sleep 0.05
  done
fi
rm -f "$pidfile"
echo "stopped app $pid"
"""

START = """\
#!/bin/sh
# An app left running by a failed deployment (whose ApplicationStop never ran, as a
# host without a successful revision has none) would still hold the port: stop it.
"$(dirname "$0")/stop.sh" || exit 1
# Fully detached: the hook must not leave anything holding its stdout.
mkdir -p {run}
cd {run}
setsid {python} {root}/app/app.py </dev/null >>app.log 2>&1 &
echo "started the app"
"""

VALIDATE = """\
#!{python}
# Poll the app's own /health (not through HAProxy) until it answers 200, bounded.
import time, urllib.error, urllib.request

port = int(open("{root}/port").read())
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
deadline = time.monotonic() + {seconds}
last = "no answer"
while time.monotonic() < deadline:
    try:
        with opener.open(f"http://127.0.0.1:{{port}}/health", timeout=1) as answer:
            print("healthy on port", port)
            raise SystemExit(0)
    except urllib.error.HTTPError as error:
        last = f"HTTP {{error.code}}"
    except OSError as error:
        last = str(error)
    time.sleep(0.05)
print("not healthy on port", port, "after {seconds} s:", last)
raise SystemExit(1)
"""

FAIL = "#!/bin/sh\necho 'failing on purpose'\nexit 1\n"


def app_bundle(
    version: str,
    *,
    unhealthy_on: Sequence[str] = (),
    failing_hook: str | None = None,
    validate_seconds: float = 3.0,
    lifetime: float = 900.0,
) -> bytes:
    """The web app as a revision. ``unhealthy_on``: hosts where its /health says 500 (so
    ValidateService fails there); ``failing_hook``: an event whose script exits 1."""
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    fmt = {"root": SHARED_ROOT, "run": RUN, "python": python}
    hooks = {
        "ApplicationStop": "scripts/stop.sh",
        "ApplicationStart": "scripts/start.sh",
        "ValidateService": "scripts/validate.py",
    }
    if failing_hook:
        hooks[failing_hook] = "scripts/fail.sh"
    appspec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: app\n    destination: {SHARED_ROOT}/app\nhooks:\n"
        + "".join(f"  {event}:\n    - location: {path}\n" for event, path in hooks.items())
    )
    files: dict[str, str | bytes] = {
        "appspec.yml": appspec,
        "app/app.py": APP.format(
            root=SHARED_ROOT, version=version, unhealthy_on=tuple(unhealthy_on), lifetime=lifetime
        ),
        "scripts/stop.sh": STOP.format(**fmt),
        "scripts/start.sh": START.format(**fmt),
        "scripts/validate.py": VALIDATE.format(**fmt, seconds=validate_seconds),
        "scripts/fail.sh": FAIL,
    }
    return make_bundle(files, modes={"scripts/validate.py": 0o755})
