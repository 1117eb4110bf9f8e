"""Failure response: how long Shipyard takes from a host dying (or an alarm firing) to
the deployment being stopped and the rollback finished, on a 5-host deployment.

Run: .venv/bin/python bench/failure_response.py [--repeat 3] [--agent-timeout 2]

An embedded server on SQLite and five real agent processes (no mount isolation). Two
deployment groups over the same five hosts deploy one host at a time (so one lost host
fails a deployment) and roll back automatically on DEPLOYMENT_FAILURE and
DEPLOYMENT_STOP_ON_ALARM. Group ``watched`` names an HTTP alarm (pointed at a tiny
local HTTP server the bench controls) in its alarmConfiguration; group ``plain`` names
none. A good revision (no scripts) is deployed to each first; then each run deploys a
bad revision whose BeforeInstall sleeps ``--hook-seconds`` on every host, and when the
third host's hook starts, one of these happens:

- host dies: the agent's process group is killed (kill -9) and stays dead until the
  server has failed the deployment; it is then started again (the host comes back) so
  the rollback, which goes first to the unhealthy host, can run there. Detection is
  the heartbeat: ``agent_timeout`` after the agent's last poll.
- agent crash, restarted: the agent is killed and started again at once, as a service
  manager would; the new process reports the interrupted event failed.
- alarm fires: the alarm endpoint answers 500 from then on, until the rollback has
  ended, as the health check of a broken release would (a rollback must not be
  stopped by it). Once with the alarm on the group (``watched``), once named only by
  the bad deployment's overrideAlarmConfiguration (``plain``).

Figures, per case the median of ``--repeat`` runs (client-side clock, polled every 5 ms):
``detect`` from the fault to the deployment reported Failed/Stopped; ``to rollback`` from
there to the rollback deployment's createTime (server clock); ``rollback`` from the
rollback's creation to it reported Succeeded; ``total`` from the fault to that. A case
whose rollback does not succeed says how it ended instead.
"""

from __future__ import annotations

import argparse
import configparser
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from shipyard.cli.client import ShipyardClient
from shipyard.config import ServerConfig
from shipyard.demo.fleet import LocalHost, prepare_host, stop_all
from shipyard.server.main import EmbeddedServer, start_embedded

HOSTS = 5
VICTIM_POSITION = 3  # the fault hits the third host to start its BeforeInstall
APP, ALARM = "bench", "bench-health"
WATCHED, PLAIN = "watched", "plain"  # deployment groups with and without the alarm
ALARM_CONFIGURATION = {"enabled": True, "alarms": [{"name": ALARM}]}
POLL_INTERVAL = 0.005
TERMINAL = ("Succeeded", "Failed", "Stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def zip_bundle(appspec: str, scripts: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        for name, text in scripts.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def bad_bundle(markers: Path, hook_seconds: float) -> bytes:
    """BeforeInstall notes which host started it (one line per host), then sleeps."""
    script = f'#!/bin/sh\necho "$BENCH_HOST" >> {markers}/"$DEPLOYMENT_ID"\nsleep {hook_seconds}\n'
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n"
        "  BeforeInstall:\n    - location: before_install.sh\n      timeout: 120\n"
    )
    return zip_bundle(appspec, {"before_install.sh": script})


class AlarmEndpoint:
    """A health URL answering 200, or 500 once ``broken`` is set."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(500 if endpoint.broken.is_set() else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per alarm poll would drown the figures

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/health"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Case:
    label: str
    group: str
    fault: Callable[[LocalHost], None]  # done to the victim host
    after_detection: Callable[[LocalHost], None] = lambda _host: None
    deployment_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Figures:
    detect: float
    to_rollback: float
    rollback: float
    total: float
    rollback_outcome: str  # "Succeeded", or how the rollback ended instead


class Bench:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.markers = work / "markers"
        self.markers.mkdir()
        self.server: EmbeddedServer = start_embedded(
            ServerConfig(
                data_dir=work / "server",
                port=free_port(),
                agent_timeout=args.agent_timeout,
                poll_seconds=args.poll_seconds,
                alarm_poll_seconds=args.alarm_poll_seconds,
            )
        )
        self.hosts: list[LocalHost] = []
        self.alarm = AlarmEndpoint()
        keys = configparser.ConfigParser()
        keys.read(self.server.credentials_path)
        session = boto3.Session(
            aws_access_key_id=keys["default"]["aws_access_key_id"],
            aws_secret_access_key=keys["default"]["aws_secret_access_key"],
            region_name="us-east-1",
        )
        self.client = ShipyardClient(self.server.url, "us-east-1", session)
        self.cd: Any = self.client.codedeploy  # plain dicts in, plain dicts out
        self._add_hosts()
        self.client.call_extension(
            "ShipyardPutAlarm", {"alarmName": ALARM, "http": {"url": self.alarm.url}}
        )
        self.cd.create_application(applicationName=APP)
        self.client.s3.create_bucket(Bucket="bench")
        self.bad = self._upload("bad.zip", bad_bundle(self.markers, args.hook_seconds))
        good = self._upload("good.zip", zip_bundle("version: 0.0\nos: linux\n", {}))
        for group, alarms in ((WATCHED, True), (PLAIN, False)):
            self._create_group(group, alarms)
            first = self.wait(self._deploy(group, good))
            if first["status"] != "Succeeded":
                raise SystemExit(f"the good revision did not deploy: {first}")

    def _add_hosts(self) -> None:
        for i in range(HOSTS):
            name = f"host-{i}"
            self.cd.register_on_premises_instance(
                instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
            )
            self.cd.add_tags_to_on_premises_instances(
                instanceNames=[name], tags=[{"Key": "bench", "Value": "yes"}]
            )
            creds = self.client.call_extension(
                "ShipyardIssueInstanceCredentials", {"instanceName": name}
            )
            host = prepare_host(
                self.work / "hosts",
                name,
                self.server.url,
                (creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]),
                isolate=False,
                poll_seconds=5.0,
            )
            self.hosts.append(host)
            self.start_agent(host)

    def _create_group(self, group: str, alarms: bool) -> None:
        options: dict[str, Any] = {}
        if alarms:
            options["alarmConfiguration"] = ALARM_CONFIGURATION
        self.cd.create_deployment_group(
            applicationName=APP,
            deploymentGroupName=group,
            serviceRoleArn="arn:aws:iam::000000000000:role/bench",
            deploymentConfigName="CodeDeployDefault.OneAtATime",
            onPremisesInstanceTagFilters=[
                {"Key": "bench", "Value": "yes", "Type": "KEY_AND_VALUE"}
            ],
            autoRollbackConfiguration={
                "enabled": True,
                "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
            },
            **options,
        )

    def _upload(self, key: str, data: bytes) -> dict[str, Any]:
        etag = self.client.s3.put_object(Bucket="bench", Key=key, Body=data)["ETag"].strip('"')
        location = {"bucket": "bench", "key": key, "bundleType": "zip", "eTag": etag}
        return {"revisionType": "S3", "s3Location": location}

    def _deploy(self, group: str, revision: dict[str, Any], **options: Any) -> str:
        return str(
            self.cd.create_deployment(
                applicationName=APP, deploymentGroupName=group, revision=revision, **options
            )["deploymentId"]
        )

    def start_agent(self, host: LocalHost) -> None:
        # The hook scripts inherit the agent's environment: BENCH_HOST says who runs them.
        host.start(env={**os.environ, "BENCH_HOST": host.name})

    def wait(self, deployment_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll until the deployment ends (every 5 ms: the figures are this precise)."""
        deadline = time.monotonic() + timeout
        while True:
            info: dict[str, Any] = self.cd.get_deployment(deploymentId=deployment_id)[
                "deploymentInfo"
            ]
            if info["status"] in TERMINAL:
                return info
            if time.monotonic() > deadline:
                raise SystemExit(f"deployment {deployment_id} still {info['status']}")
            time.sleep(POLL_INTERVAL)

    def victim(self, deployment_id: str, timeout: float = 120.0) -> LocalHost:
        """The host whose BeforeInstall is the VICTIM_POSITION-th to start, once it has."""
        path = self.markers / deployment_id
        deadline = time.monotonic() + timeout
        while True:
            names = path.read_text().split() if path.exists() else []
            if len(names) >= VICTIM_POSITION:
                return next(h for h in self.hosts if h.name == names[VICTIM_POSITION - 1])
            if time.monotonic() > deadline:
                raise SystemExit(f"deployment {deployment_id}: only {names} started")
            time.sleep(POLL_INTERVAL)

    def run(self, case: Case) -> Figures:
        """Deploy the bad revision, strike the victim host, and time the response until
        the rollback has ended."""
        deployment_id = self._deploy(case.group, self.bad, **case.deployment_options)
        victim = self.victim(deployment_id)
        struck = time.perf_counter()
        case.fault(victim)
        ended = self.wait(deployment_id)
        detected = time.perf_counter()
        case.after_detection(victim)
        if ended["status"] == "Succeeded":
            raise SystemExit(f"the fault did not stop deployment {deployment_id}")
        rollback_id = ended.get("rollbackInfo", {}).get("rollbackDeploymentId")
        if rollback_id is None:
            raise SystemExit(f"no rollback for {deployment_id}: {ended.get('rollbackInfo')}")
        rollback = self.wait(rollback_id)
        finished = time.perf_counter()
        self.alarm.broken.clear()  # the rollback has ended: healthy again for the next run
        outcome = rollback["status"]
        if outcome != "Succeeded":
            outcome += f" ({rollback.get('errorInformation', {}).get('code', 'no error code')})"
        to_rollback = (rollback["createTime"] - ended["completeTime"]).total_seconds()
        return Figures(
            detect=detected - struck,
            to_rollback=to_rollback,
            rollback=finished - detected - to_rollback,
            total=finished - struck,
            rollback_outcome=outcome,
        )

    def close(self) -> None:
        stop_all(self.hosts)
        self.alarm.close()
        self.server.stop()


def kill_agent(host: LocalHost) -> None:
    assert host.process is not None
    os.killpg(host.process.pid, signal.SIGKILL)
    host.process.wait()


def cases(bench: Bench) -> list[Case]:
    def crash_and_restart(host: LocalHost) -> None:
        kill_agent(host)
        bench.start_agent(host)

    def alarm_fires(_host: LocalHost) -> None:
        bench.alarm.broken.set()

    return [
        Case("host dies (heartbeat)", PLAIN, kill_agent, after_detection=bench.start_agent),
        Case("agent crash, restarted", PLAIN, crash_and_restart),
        Case("alarm, on the group", WATCHED, alarm_fires),
        Case(
            "alarm, on the deployment",
            PLAIN,
            alarm_fires,
            deployment_options={"overrideAlarmConfiguration": ALARM_CONFIGURATION},
        ),
    ]


def report(label: str, runs: list[Figures]) -> str:
    failed = [r.rollback_outcome for r in runs if r.rollback_outcome != "Succeeded"]
    detect = statistics.median(r.detect for r in runs)
    if failed:
        return f"{label:<26} {detect:>7.3f}s   rollback ended {', '.join(failed)}"
    to_rollback = statistics.median(r.to_rollback for r in runs)
    rollback = statistics.median(r.rollback for r in runs)
    totals = [r.total for r in runs]
    return (
        f"{label:<26} {detect:>7.3f}s {to_rollback:>11.3f}s {rollback:>8.3f}s "
        f"{statistics.median(totals):>7.3f}s   ({min(totals):.3f}-{max(totals):.3f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--agent-timeout", type=float, default=2.0)
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help="how long the server holds a poll open (an open poll counts as contact)",
    )
    parser.add_argument("--alarm-poll-seconds", type=float, default=1.0)
    parser.add_argument("--hook-seconds", type=float, default=1.0)
    args = parser.parse_args()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine: {cores} cores, python {sys.version.split()[0]}; {HOSTS} hosts, OneAtATime; "
        f"server agent_timeout {args.agent_timeout:g} s, poll_seconds {args.poll_seconds:g} s, "
        f"alarm_poll_seconds {args.alarm_poll_seconds:g} s; "
        f"BeforeInstall sleeps {args.hook_seconds:g} s"
    )
    print(
        f"{'case':<26} {'detect':>8} {'to rollback':>12} {'rollback':>9} {'total':>8}"
        f"   (median of {args.repeat}; total min-max)"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        bench = Bench(Path(tmp), args)
        try:
            for case in cases(bench):
                print(report(case.label, [bench.run(case) for _ in range(args.repeat)]))
        finally:
            bench.close()
    print(f"whole run: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
