"""Function host: warm Invoke latency, cold start, and the weighted alias split.

Run: .venv/bin/python bench/function_invoke.py [--clients 8] [--warm 4000] [--cold 10]
     [--split 10000] [--weight 0.1] [--profile PATH]

Starts ``shipyard server`` in its own process (SQLite) and creates a no-op python3.11
function (``return None``), publishes it twice and points an alias ``live`` at version
1 with version 2 at ``--weight``. Then, all on loopback:

- **warm**: ``--clients`` concurrent keep-alive connections in this process send
  SigV4-signed Invoke requests for ``$LATEST`` (after a warm-up that starts the
  workers); each latency runs from writing the request to reading the whole answer.
  A no-op function makes that latency the host's overhead: the API, auth, the Runtime
  API round trip and the runtime interface client. Prints p50 and p99.
- **cold**: ``--cold`` times, a configuration change (so no warm worker fits) followed
  by one Invoke through boto3; prints the median and the largest.
- **split**: ``--split`` invocations of the alias; prints the observed share of version 2
  against ``--weight`` (the error in percentage points) and the 3-sigma band of a
  binomial draw of that size.

``--profile PATH`` records the server with py-spy (collapsed stacks) during the warm
phase; read it with ``bench/profiling.py PATH``.

Needs no root (as root, workers run as ``nobody``). Bounded: every loop has a count.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from harness import ServerProcess, cpu_seconds
from profiling import py_spy

from shipyard import sigv4

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/bench"
NOOP = "def handler(event, context):\n    return None\n"


class InvokeConnection:
    """One keep-alive HTTP/1.1 connection sending signed Invoke requests."""

    def __init__(self, port: int, creds: sigv4.Credentials, function: str) -> None:
        self.port = port
        self.creds = creds
        # The qualifier rides in the name (``fn:live``): the path is signed as sent.
        self.path = f"/2015-03-31/functions/{function.replace(':', '%3A')}/invocations"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def invoke(self) -> tuple[float, str]:
        """One Invoke; returns its latency in seconds and the executed version."""
        body = b"{}"
        headers = sigv4.sign_headers(
            self.creds,
            method="POST",
            host=f"127.0.0.1:{self.port}",
            path=self.path,
            body=body,
            headers={"Content-Type": "application/json"},
            region=REGION,
            service="lambda",
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        head = f"POST {self.path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        request = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        started = time.perf_counter()
        self.writer.write(request)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        await self.reader.readexactly(int(fields.get("content-length", "0")))
        elapsed = time.perf_counter() - started
        if status != 200 or "x-amz-function-error" in fields:
            raise RuntimeError(f"Invoke answered {status} {fields}")
        return elapsed, fields.get("x-amz-executed-version", "")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_clients(
    port: int, creds: sigv4.Credentials, function: str, clients: int, total: int
) -> tuple[list[float], Counter[str]]:
    latencies: list[float] = []
    versions: Counter[str] = Counter()
    per_client = total // clients

    async def client() -> None:
        connection = InvokeConnection(port, creds, function)
        try:
            for _ in range(per_client):
                latency, version = await connection.invoke()
                latencies.append(latency)
                versions[version] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, versions


def cpu_of(server_pid: int) -> tuple[float, float]:
    """CPU seconds of the server and, summed, of its live child processes (the workers)."""
    children = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == server_pid:
            children += cpu_seconds(int(stat.parent.name))
    return cpu_seconds(server_pid), children


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def package(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warm", type=int, default=4000)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--split", type=int, default=10000)
    parser.add_argument("--weight", type=float, default=0.1)
    parser.add_argument(
        "--profile", type=Path, help="record the server with py-spy during the warm phase"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-fn-bench-") as tmp:
        server = ServerProcess(
            Path(tmp) / "server",
            extra_env={"SHIPYARD_FUNCTIONS_MAX_CONCURRENCY": str(max(16, args.clients * 2))},
        )
        try:
            key_id, secret = server.admin_keys()
            lam: Any = boto3.client(
                "lambda",
                endpoint_url=server.url,
                region_name=REGION,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 0}),
            )
            lam.create_function(
                FunctionName="noop",
                Runtime="python3.11",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": package(NOOP)},
                Publish=True,
            )
            lam.update_function_configuration(FunctionName="noop", Description="second")
            lam.update_function_configuration(FunctionName="noop", Timeout=4)
            lam.publish_version(FunctionName="noop")
            lam.create_alias(
                FunctionName="noop",
                Name="live",
                FunctionVersion="1",
                RoutingConfig={"AdditionalVersionWeights": {"2": args.weight}},
            )
            creds = sigv4.Credentials(key_id, secret)

            cold = []
            for round_ in range(args.cold):
                lam.update_function_configuration(FunctionName="noop", Timeout=5 + round_ % 2)
                started = time.perf_counter()
                lam.invoke(FunctionName="noop")
                cold.append(time.perf_counter() - started)

            asyncio.run(run_clients(server.port, creds, "noop", args.clients, args.clients * 20))
            with py_spy(server.pid, args.profile):
                cpu_before = cpu_of(server.pid)
                client_before = _own_cpu()
                warm_started = time.perf_counter()
                warm, _ = asyncio.run(
                    run_clients(server.port, creds, "noop", args.clients, args.warm)
                )
                warm_seconds = time.perf_counter() - warm_started
                cpu_after = cpu_of(server.pid)
                client_cpu = _own_cpu() - client_before
            _, versions = asyncio.run(
                run_clients(server.port, creds, "noop:live", args.clients, args.split)
            )
        finally:
            server.stop()

    n = sum(versions.values())
    share = versions["2"] / n
    sigma = (args.weight * (1 - args.weight) / n) ** 0.5
    print(f"warm Invoke, {args.clients} clients, {len(warm)} calls (no-op python3.11):")
    print(
        f"  p50 {percentile(warm, 0.5) * 1000:.2f} ms   p99 {percentile(warm, 0.99) * 1000:.2f} ms"
    )
    server_cpu = cpu_after[0] - cpu_before[0]
    worker_cpu = cpu_after[1] - cpu_before[1]
    print(
        f"  {len(warm) / warm_seconds:.0f} invocations/s; CPU per invocation: server "
        f"{server_cpu / len(warm) * 1000:.2f} ms, workers {worker_cpu / len(warm) * 1000:.2f} ms, "
        f"clients (this process) {client_cpu / len(warm) * 1000:.2f} ms"
    )
    print(f"cold start ({args.cold} runs, boto3 Invoke after a config change):")
    print(f"  median {statistics.median(cold) * 1000:.1f} ms   max {max(cold) * 1000:.1f} ms")
    print(f"weighted alias, {n} invocations, configured {args.weight:.3f} to version 2:")
    print(
        f"  observed {share:.4f}  error {abs(share - args.weight) * 100:.2f} points"
        f"  (3 sigma = {3 * sigma * 100:.2f} points)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
