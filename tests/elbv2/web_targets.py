"""Small real HTTP servers on loopback to put behind a load balancer: each its own
process (none competes with an in-process server for the GIL), answering "/" (and any
other path) with its name and "/health" with 200."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tests.conftest import free_port
from tests.support import wait_until

APP = """
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The answer in one segment: headers and body written apiece would meet the
    # client's delayed ACK and cost 40 ms a request.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path.startswith("/slow/"):  # /slow/<seconds>: a request that takes a while
            time.sleep(float(self.path.rsplit("/", 1)[1]))
        if self.path == "/missing":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = NAME.encode()
        self.send_response(200)
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


print("ready", flush=True)
Server(("127.0.0.1", PORT), Handler).serve_forever()
"""


@dataclass
class WebTarget:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_target(name: str) -> WebTarget:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", APP, name, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready", f"target {name} did not start"
    return WebTarget(name, port, process)


@contextlib.contextmanager
def web_targets(*names: str) -> Iterator[dict[str, WebTarget]]:
    started: dict[str, WebTarget] = {}
    try:
        for name in names:
            started[name] = start_target(name)
        yield started
    finally:
        for target in started.values():
            target.stop()


def fetch(url: str, timeout: float = 5.0) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_healthy(elbv2: object, tg_arn: str, count: int, timeout: float = 30.0) -> None:
    def healthy() -> bool:
        found = elbv2.describe_target_health(TargetGroupArn=tg_arn)  # type: ignore[attr-defined]
        states = [d["TargetHealth"]["State"] for d in found["TargetHealthDescriptions"]]
        return states.count("healthy") == count

    wait_until(healthy, f"{count} healthy targets in {tg_arn}", timeout)
