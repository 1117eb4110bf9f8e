"""The server's own cost of one warm Invoke, without the load of a shared machine.

Run: .venv/bin/python bench/invoke_cost.py [--calls 3000] [--instructions]

Builds the server's services in this process (SQLite, a real function host and worker)
and calls the ASGI app directly, one Invoke after another, for a no-op ``python3.11``
function: no uvicorn, no client load. Prints the CPU time of this thread per Invoke
(the worker's is its own process). ``--instructions`` instead runs this script twice
under valgrind's callgrind (50 and 250 calls) and prints the difference per Invoke:
a count that other sessions on the machine do not change, for comparing two versions
of the code (``PYTHONPATH=OTHER/src`` runs another checkout's).
"""

from __future__ import annotations

import argparse
import base64
import configparser
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from function_invoke import NOOP, ROLE, package

from shipyard import sigv4
from shipyard.config import ServerConfig
from shipyard.server.app import create_app
from shipyard.server.main import build_services, ensure_admin_credentials

WARM_CALLS = 20


def _scope(creds: sigv4.Credentials, method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = sigv4.sign_headers(
        creds,
        method=method,
        host="127.0.0.1:1",
        path=path,
        body=body,
        headers={"Content-Type": "application/json"},
        region="us-east-1",
        service="lambda",
        amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    )
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [*raw, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 1),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }


async def _measure(calls: int) -> float:
    """Thread CPU seconds per Invoke."""
    with tempfile.TemporaryDirectory(prefix="shipyard-invoke-cost-") as tmp:
        services = build_services(ServerConfig(data_dir=Path(tmp) / "server", port=1))
        parser = configparser.ConfigParser()
        parser.read(ensure_admin_credentials(services))
        creds = sigv4.Credentials(
            parser["default"]["aws_access_key_id"], parser["default"]["aws_secret_access_key"]
        )
        app = create_app(services)

        async def call(scope: dict[str, Any], body: bytes) -> int:
            sent: list[dict[str, Any]] = []
            delivered = False

            async def receive() -> dict[str, Any]:
                nonlocal delivered
                if delivered:  # the app never asks twice for a body it was given whole
                    raise RuntimeError("receive called again")
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app(scope, receive, send)
            return int(sent[0]["status"])

        host = services.function_host
        assert host is not None
        host.start()
        try:
            create = json.dumps(
                {
                    "FunctionName": "noop",
                    "Runtime": "python3.11",
                    "Role": ROLE,
                    "Handler": "app.handler",
                    "Code": {"ZipFile": base64.b64encode(package(NOOP)).decode()},
                }
            ).encode()
            assert await call(_scope(creds, "POST", "/2015-03-31/functions", create), create) == 201
            invoke = _scope(creds, "POST", "/2015-03-31/functions/noop/invocations", b"{}")
            for _ in range(WARM_CALLS):
                assert await call(invoke, b"{}") == 200
            started = time.thread_time()
            for _ in range(calls):
                await call(invoke, b"{}")
            return (time.thread_time() - started) / calls
        finally:
            await host.stop()
            services.db.close()


def _instructions(calls: int) -> int:
    with tempfile.TemporaryDirectory(prefix="shipyard-callgrind-") as tmp:
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable,
                __file__,
                "--calls",
                str(calls),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {run.stderr[-500:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--instructions", action="store_true")
    args = parser.parse_args()
    if args.instructions:
        few, many = _instructions(50), _instructions(250)
        print(f"server side of one warm Invoke: {(many - few) / 200:,.0f} instructions")
        return 0
    seconds = uvloop.run(_measure(args.calls))
    print(f"server CPU per warm Invoke (no uvicorn): {seconds * 1e6:.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
