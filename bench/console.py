"""The web console: page load time with a long history, and how soon a lifecycle
event's completion shows in a browser watching the deployment.

Run: .venv/bin/python bench/console.py [--history 1000] [--hosts 10] [--requests 30]
     [--database postgresql://...] [--skip-browser]

1. **Page load.** An embedded server gets ``--history`` finished deployments of one
   group of ``--hosts`` hosts (written straight into the store, seven events per host,
   so the history is as large as a real one without running it). A signed-in client
   then GETs the overview, the fleet report and the newest deployment's page
   ``--requests`` times each over one keep-alive loopback connection; the time from
   request to the last byte is, on loopback, the server's time.
2. **Event to browser.** Debian's Chromium (headless, through chromedriver) opens the
   page of a deployment to one real agent whose five hooks each sleep 0.3 s. A
   MutationObserver records when each event's row turns Succeeded; the delay is that
   moment minus the event's ``endTime`` (the server's clock when the agent's
   completion was stored; same machine, same clock). Three deployments; the goal is
   under 250 ms.
"""

from __future__ import annotations

import argparse
import configparser
import http.client
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import boto3

from shipyard.config import ServerConfig
from shipyard.demo.fleet import LocalHost, prepare_host, stop_all
from shipyard.engine.state import DeploymentState, EventState, TargetState
from shipyard.model import DeploymentStatus, LifecycleEventStatus, TargetStatus
from shipyard.server.main import EmbeddedServer, start_embedded
from shipyard.store import deployments as store

sys.path.insert(0, str(Path(__file__).parent))
from deploy_overhead import free_port

EVENTS = [
    "ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
    "ApplicationStart", "ValidateService",
]  # fmt: skip
HOOKS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]


def admin_keys(server: EmbeddedServer) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(server.credentials_path)
    keys = parser["default"]
    return keys["aws_access_key_id"], keys["aws_secret_access_key"]


def clients(server: EmbeddedServer) -> tuple[Any, Any]:
    key_id, secret = admin_keys(server)
    session = boto3.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    )
    return (
        session.client("codedeploy", endpoint_url=server.url),
        session.client("s3", endpoint_url=server.url),
    )


def group(cd: Any, hosts: list[str]) -> None:
    for name in hosts:
        cd.register_on_premises_instance(
            instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
        )
        cd.add_tags_to_on_premises_instances(
            instanceNames=[name], tags=[{"Key": "bench", "Value": "yes"}]
        )
    cd.create_application(applicationName="bench")
    cd.create_deployment_group(
        applicationName="bench",
        deploymentGroupName="fleet",
        serviceRoleArn="arn:aws:iam::000000000000:role/bench",
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": "bench", "Value": "yes", "Type": "KEY_AND_VALUE"}],
    )


def fill_history(server: EmbeddedServer, count: int, hosts: list[str]) -> str:
    """``count`` finished deployments written into the store; the newest one's id."""
    start = time.time() - count * 60
    newest = ""
    with server.services.db.tx() as conn:
        for n in range(count):
            created = start + n * 60
            targets = {
                name: TargetState(
                    name,
                    [
                        EventState(e, LifecycleEventStatus.SUCCEEDED, created + i, created + i + 1)
                        for i, e in enumerate(EVENTS)
                    ],
                    TargetStatus.SUCCEEDED,
                    created + 8,
                )
                for name in hosts
            }
            newest = f"d-BENCH{n:05d}"
            state = DeploymentState(
                newest,
                DeploymentStatus.SUCCEEDED,
                {"type": "HOST_COUNT", "value": 1},
                3600.0,
                create_time=created,
                start_time=created,
                complete_time=created + 9,
                targets=targets,
            )
            revision = {
                "revisionType": "S3",
                "s3Location": {"bucket": "bench", "key": f"app/v{n}.zip", "bundleType": "zip"},
            }
            info = {
                "revision": revision,
                "deploymentConfigName": "CodeDeployDefault.AllAtOnce",
                "creator": "user",
                "computePlatform": "Server",
            }
            store.insert(conn, state, info, "bench", "fleet")
    return newest


def sign_in(server: EmbeddedServer) -> str:
    key_id, secret = admin_keys(server)
    parts = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    body = urllib.parse.urlencode({"access_key_id": key_id, "secret": secret})
    conn.request(
        "POST", "/console/login", body, {"content-type": "application/x-www-form-urlencoded"}
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return (response.getheader("set-cookie") or "").split(";", 1)[0]


def page_times(server: EmbeddedServer, cookie: str, path: str, repeat: int) -> list[float]:
    parts = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    times = []
    for _ in range(repeat + 1):  # the first one warms caches and is not counted
        started = time.perf_counter()
        conn.request("GET", path, headers={"cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200 or not body:
            raise SystemExit(f"GET {path}: {response.status}")
    conn.close()
    return times[1:]


def page_load(args: argparse.Namespace, work: Path) -> None:
    config = ServerConfig(data_dir=work / "pages", port=free_port(), database=args.database)
    server = start_embedded(config)
    try:
        hosts = [f"host-{i:03d}" for i in range(args.hosts)]
        cd, _ = clients(server)
        group(cd, hosts)
        started = time.perf_counter()
        newest = fill_history(server, args.history, hosts)
        print(
            f"history: {args.history} deployments x {args.hosts} hosts written in "
            f"{time.perf_counter() - started:.1f} s ({server.services.db.dialect})"
        )
        cookie = sign_in(server)
        print(f"{'page':<34} {'median':>8} {'p95':>8} {'max':>8}")
        for path in ("/console", "/console/fleet", f"/console/deployments/{newest}"):
            times = sorted(page_times(server, cookie, path, args.requests))
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(
                f"{path:<34} {statistics.median(times) * 1000:>6.1f}ms "
                f"{p95 * 1000:>6.1f}ms {times[-1] * 1000:>6.1f}ms"
            )
    finally:
        server.stop()


OBSERVER = """
window.__shown = {};
new MutationObserver((changes) => {
  for (const change of changes) {
    const li = change.target;
    if (li.dataset && li.dataset.status === 'Succeeded' && !(li.dataset.event in window.__shown))
      window.__shown[li.dataset.event] = Date.now();
  }
}).observe(document.getElementById('targets'),
           {subtree: true, attributes: true, attributeFilter: ['data-status']});
"""


def browser_delay(work: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.conftest import LiveServer
    from tests.e2e.console_browser import chrome
    from tests.e2e.console_browser import sign_in as browser_sign_in

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        print("event to browser: skipped (no chromium / chromedriver)")
        return
    server = start_embedded(ServerConfig(data_dir=work / "live", port=free_port()))
    host: LocalHost | None = None
    driver = chrome()
    try:
        cd, s3 = clients(server)
        group(cd, ["live-1"])
        from shipyard.cli.client import ShipyardClient

        key_id, secret = admin_keys(server)
        session = boto3.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
        )
        creds = ShipyardClient(server.url, "us-east-1", session).call_extension(
            "ShipyardIssueInstanceCredentials", {"instanceName": "live-1"}
        )
        keys = (creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"])
        host = prepare_host(work / "hosts", "live-1", server.url, keys, isolate=False)
        host.start()
        s3.create_bucket(Bucket="bench")
        data = sleepy_bundle()
        etag = s3.put_object(Bucket="bench", Key="live.zip", Body=data)["ETag"].strip('"')
        location = {"bucket": "bench", "key": "live.zip", "bundleType": "zip", "eTag": etag}
        live = LiveServer(server.url, work, server.services, key_id, secret)
        browser_sign_in(driver, live)
        delays: list[float] = []
        for _ in range(3):
            deployment_id = cd.create_deployment(
                applicationName="bench",
                deploymentGroupName="fleet",
                revision={"revisionType": "S3", "s3Location": location},
            )["deploymentId"]
            driver.get(f"{server.url}/console/deployments/{deployment_id}")
            driver.execute_script(OBSERVER)
            while cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"] in (
                "Created", "InProgress",
            ):  # fmt: skip
                time.sleep(0.05)
            time.sleep(0.5)  # the last event's row has surely been drawn by now
            shown: dict[str, float] = driver.execute_script("return window.__shown")
            target = cd.get_deployment_target(deploymentId=deployment_id, targetId="live-1")
            for event in target["deploymentTarget"]["instanceTarget"]["lifecycleEvents"]:
                if event["lifecycleEventName"] in shown:
                    ended = event["endTime"].timestamp() * 1000
                    delays.append(shown[event["lifecycleEventName"]] - ended)
        delays.sort()
        print(
            f"event to browser: {len(delays)} events, median {statistics.median(delays):.0f} ms, "
            f"max {delays[-1]:.0f} ms (goal < 250 ms)"
        )
    finally:
        driver.quit()
        if host is not None:
            stop_all([host])
        server.stop()


def sleepy_bundle() -> bytes:
    import io
    import zipfile

    appspec = "version: 0.0\nos: linux\nhooks:\n" + "".join(
        f"  {h}:\n    - location: pause.sh\n" for h in HOOKS
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        info = zipfile.ZipInfo("pause.sh")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, "#!/bin/sh\nsleep 0.3\n")
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database", default="", help="SQLAlchemy URL (default SQLite)")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page_load(args, Path(tmp))
        if not args.skip_browser:
            browser_delay(Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
