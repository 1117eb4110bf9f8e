"""The embedded ELBv2's data path: latency it adds, and requests lost while reweighting.

    .venv/bin/python bench/elb_latency.py [--requests 4000] [--connections 4] [--flips 40]

Starts an embedded Shipyard server on SQLite (HAProxy from PATH), two target groups of
two small real HTTP servers each (separate processes on loopback), and a load balancer
with one listener. Then, with the project's load generator (tests/e2e/http_load.py,
keep-alive connections, as fast as answers come):

1. **Added latency**: ``--requests`` GETs straight to one target, then the same number
   through the listener forwarding to a group holding only that target; p50 and p99 of
   each and the difference.
2. **Reweighting**: load through the listener while ModifyListener flips its forward
   between 90/10 and 10/90 ``--flips`` times; requests that failed (must be 0: HAProxy
   retries are off, so nothing hides a failure), and the time each ModifyListener took.
"""

from __future__ import annotations

import argparse
import configparser
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from tests.conftest import free_port
from tests.e2e.http_load import start_load, summarize
from tests.elbv2.scenario import forward, target_group
from tests.elbv2.web_targets import wait_healthy, web_targets

from shipyard.config import ServerConfig
from shipyard.server.main import start_embedded


def measure(url: str, out: Path, requests: int, connections: int) -> tuple[float, float, int]:
    load = start_load(url, out, connections=connections, max_requests=requests, seconds=120)
    summary = summarize(load.finish())
    return summary.p50 * 1000, summary.p99 * 1000, summary.failures


def weighted(blue: str, green: str, green_weight: int) -> list[dict[str, Any]]:
    groups = [
        {"TargetGroupArn": blue, "Weight": 100 - green_weight},
        {"TargetGroupArn": green, "Weight": green_weight},
    ]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--flips", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="elb-bench-"))
    config = ServerConfig(
        data_dir=work / "s", port=free_port(), elb_keep_running=False, minute_seconds=1.2
    )
    server = start_embedded(config)
    keys = configparser.ConfigParser()
    keys.read(server.credentials_path)
    elbv2 = boto3.client(
        "elbv2",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=keys["default"]["aws_access_key_id"],
        aws_secret_access_key=keys["default"]["aws_secret_access_key"],
    )
    try:
        with web_targets("blue-1", "blue-2", "green-1", "green-2") as targets:
            lb = elbv2.create_load_balancer(Name="bench")["LoadBalancers"][0]["LoadBalancerArn"]
            blue, green = target_group(elbv2, "blue"), target_group(elbv2, "green")
            port = free_port()
            listener = elbv2.create_listener(
                LoadBalancerArn=lb, Port=port, DefaultActions=weighted(blue, green, 10)
            )["Listeners"][0]["ListenerArn"]
            elbv2.register_targets(
                TargetGroupArn=blue, Targets=[{"Id": "127.0.0.1", "Port": targets["blue-1"].port}]
            )
            wait_healthy(elbv2, blue, 1)
            elbv2.modify_listener(ListenerArn=listener, DefaultActions=forward(blue))
            direct = measure(
                f"http://127.0.0.1:{targets['blue-1'].port}/",
                work / "direct.tsv",
                args.requests,
                args.connections,
            )
            through = measure(
                f"http://127.0.0.1:{port}/", work / "lb.tsv", args.requests, args.connections
            )
            print(f"direct to a target:   p50 {direct[0]:.2f} ms  p99 {direct[1]:.2f} ms")
            print(f"through the listener: p50 {through[0]:.2f} ms  p99 {through[1]:.2f} ms")
            print(
                f"added by the load balancer: p50 {through[0] - direct[0]:+.2f} ms  "
                f"p99 {through[1] - direct[1]:+.2f} ms  (failures {direct[2]} / {through[2]})"
            )
            elbv2.register_targets(
                TargetGroupArn=blue, Targets=[{"Id": "127.0.0.1", "Port": targets["blue-2"].port}]
            )
            elbv2.register_targets(
                TargetGroupArn=green,
                Targets=[
                    {"Id": "127.0.0.1", "Port": t.port} for n, t in targets.items() if "green" in n
                ],
            )
            elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted(blue, green, 10))
            wait_healthy(elbv2, blue, 2)
            wait_healthy(elbv2, green, 2)
            load = start_load(
                f"http://127.0.0.1:{port}/",
                work / "flip.tsv",
                connections=args.connections,
                seconds=120,
                max_requests=10_000_000,
            )
            took = []
            for flip in range(args.flips):
                started = time.perf_counter()
                elbv2.modify_listener(
                    ListenerArn=listener,
                    DefaultActions=weighted(blue, green, 90 if flip % 2 else 10),
                )
                took.append((time.perf_counter() - started) * 1000)
                load.wait_for(load.sent() + 100)
            summary = summarize(load.stop())
            print(
                f"reweighting: {args.flips} ModifyListener flips 90/10 <-> 10/90 under load, "
                f"{summary.sent} requests, {summary.failures} failed; "
                f"ModifyListener median {statistics.median(took):.1f} ms, max {max(took):.1f} ms"
            )
            if summary.failures:
                print("failed:", {k: n for k, n in summary.bodies.items() if k[:1].isdigit()})
    finally:
        server.stop()


if __name__ == "__main__":
    main()
