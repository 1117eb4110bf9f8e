"""Lambda deployments: the delay between a scheduled shift step and the alias
answering with the new weights.

Run: .venv/bin/python bench/lambda_shift.py [--runs 2] [--minute 0.5] [--backend both]

Starts a Shipyard server in this process (SQLite, ``minute_seconds`` = ``--minute``) and
deploys a function alias from version 1 to 2 with
``CodeDeployDefault.LambdaLinear10PercentEvery1Minute`` (ten steps), ``--runs`` times,
on each backend:

- **embedded**: the server's own function host (the default ``functions_backend``);
- **moto**: ``functions_backend: aws`` pointed at moto's server on loopback (a second
  implementation of the Lambda API, as an AWS region would be reached).

While the shift runs, this process polls the deployment's state (what the engine
decided, read through the runner) and GetAlias (what the alias answers), each about
every 2 ms, and prints for each step:

- **decision lag**: from when the step was due (the previous step's decision plus one
  interval) to the engine deciding it: the sweeper ticks once a second, so up to 1 s;
- **apply delay**: from the decision to GetAlias answering the new weights (the
  UpdateAlias call off the request path, plus this poll's own period).

Bounded: ``--runs`` deployments per backend, each at most 60 s.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import io
import itertools
import os
import socket
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from shipyard.config import ServerConfig
from shipyard.server.main import EmbeddedServer, start_embedded

CONFIG = "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"
ROLE = "arn:aws:iam::123456789012:role/bench"
STYLE = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}
POLL = 0.002
RUN_LIMIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def code(build: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"def handler(event, context):\n    return {build}\n")
    return buffer.getvalue()


def make_function(lam: Any, name: str, role: str) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code(1)},
    )
    lam.publish_version(FunctionName=name)
    lam.update_function_code(FunctionName=name, ZipFile=code(2))
    lam.publish_version(FunctionName=name)


def appspec(function: str, alias: str) -> dict[str, Any]:
    text = (
        "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n"
        f"      Properties: {{Name: {function}, Alias: {alias}, "
        'CurrentVersion: "1", TargetVersion: "2"}\n'
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": text, "sha256": digest}}


def alias_weight(lam: Any, function: str, alias: str) -> int:
    found = lam.get_alias(FunctionName=function, Name=alias)
    if found["FunctionVersion"] == "2":
        return 100
    extra = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return round(float(extra.get("2", 0.0)) * 100)


def one_run(
    server: EmbeddedServer, cd: Any, lam: Any, function: str, alias: str, interval: float
) -> tuple[list[float], list[float]]:
    """(decision lags, apply delays) of one deployment's steps, in seconds."""
    lam.create_alias(FunctionName=function, Name=alias, FunctionVersion="1")
    cd.create_deployment_group(
        applicationName="bench",
        deploymentGroupName=alias,
        serviceRoleArn=ROLE,
        deploymentConfigName=CONFIG,
        deploymentStyle=STYLE,
    )
    deployment_id = cd.create_deployment(
        applicationName="bench", deploymentGroupName=alias, revision=appspec(function, alias)
    )["deploymentId"]
    runner = server.services.runner
    decided: dict[int, float] = {}
    seen: dict[int, float] = {}
    deadline = time.monotonic() + RUN_LIMIT
    while len(seen) < 10 and time.monotonic() < deadline:
        stored = runner.current(deployment_id)
        now = time.time()
        if stored is not None and stored.state.shift_weight not in decided:
            decided[stored.state.shift_weight] = now
        weight = alias_weight(lam, function, alias)
        if weight and weight not in seen:
            seen[weight] = time.time()
        time.sleep(POLL)
    steps = sorted(w for w in decided if w and w in seen)
    lags = [decided[b] - (decided[a] + interval) for a, b in itertools.pairwise(steps)]
    delays = [seen[w] - decided[w] for w in steps]
    return lags, delays


def bench(name: str, overrides: dict[str, Any], runs: int, minute: float, moto: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            data_dir=Path(tmp), port=free_port(), minute_seconds=minute, **overrides
        )
        server = start_embedded(config)
        try:
            keys = _admin_keys(server)
            cd = boto3.client("codedeploy", endpoint_url=server.url, **keys)
            if moto:
                lam = boto3.client("lambda", endpoint_url=moto, **_moto_keys())
                role = _moto_role(moto)
            else:
                lam = boto3.client("lambda", endpoint_url=server.url, **keys)
                role = ROLE
            cd.create_application(applicationName="bench", computePlatform="Lambda")
            function = f"bench-{name}"
            make_function(lam, function, role)
            lags: list[float] = []
            delays: list[float] = []
            for run in range(runs):
                more_lags, more_delays = one_run(server, cd, lam, function, f"r{run}", minute)
                lags += more_lags
                delays += more_delays
        finally:
            server.stop()
    print(f"{name}: {len(delays)} steps over {runs} run(s), minute = {minute} s")
    _line("decision lag (due -> decided)", lags)
    _line("apply delay (decided -> GetAlias shows it)", delays)


def _line(what: str, values: list[float]) -> None:
    if not values:
        print(f"  {what}: no steps observed")
        return
    ms = sorted(v * 1000 for v in values)
    print(
        f"  {what}: median {statistics.median(ms):.1f} ms, "
        f"p90 {ms[int(len(ms) * 0.9) - 1 if len(ms) > 1 else 0]:.1f} ms, max {ms[-1]:.1f} ms"
    )


def _admin_keys(server: EmbeddedServer) -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(server.credentials_path)
    return {
        "region_name": "us-east-1",
        "aws_access_key_id": parser["default"]["aws_access_key_id"],
        "aws_secret_access_key": parser["default"]["aws_secret_access_key"],
    }


def _moto_keys() -> dict[str, str]:
    return {
        "region_name": "us-east-1",
        "aws_access_key_id": "moto",
        "aws_secret_access_key": "moto",
    }


def _moto_role(url: str) -> str:
    iam = boto3.client("iam", endpoint_url=url, **_moto_keys())
    role: str = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return role


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--minute", type=float, default=0.5)
    parser.add_argument("--backend", choices=["embedded", "moto", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("embedded", "both"):
        bench("embedded", {}, args.runs, args.minute, "")
    if args.backend in ("moto", "both"):
        os.environ.update({"AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto"})
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        url = f"http://{host}:{port}"
        try:
            backend = {
                "functions_backend": "aws",
                "functions_endpoint": url,
                "functions_region": "us-east-1",
            }
            bench("moto", backend, args.runs, args.minute, url)
        finally:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
