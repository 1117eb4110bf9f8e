"""Deployment overhead: a no-op seven-event in-place deployment to 1 host and to
20 hosts at once, with real agent processes, plus the agent's resident memory.

Run: .venv/bin/python bench/deploy_overhead.py [--repeat 5] [--hosts 1,20]

Wall time is measured from the CreateDeployment call to the first GetDeployment
that reports Succeeded (client side, polled every 5 ms) and from the server's own
createTime to completeTime. Overhead is wall time minus the time spent in hook
scripts: in the "no scripts" case the hooks have nothing to run, so overhead is
the wall time; in the "exit 0 scripts" case each of the five hooks runs one
``#!/bin/sh`` script that exits at once, whose cost is measured separately here and
subtracted along the critical path (five scripts per host, hosts in parallel).
"""

from __future__ import annotations

import argparse
import configparser
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3

from shipyard.config import ServerConfig
from shipyard.demo.fleet import LocalHost, prepare_host, stop_all
from shipyard.server.main import EmbeddedServer, start_embedded

HOOKS = ["ApplicationStop", "BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService"]
SCRIPT = "#!/bin/sh\nexit 0\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bundle(with_scripts: bool) -> bytes:
    appspec = "version: 0.0\nos: linux\n"
    files = {}
    if with_scripts:
        appspec += "hooks:\n" + "".join(f"  {h}:\n    - location: noop.sh\n" for h in HOOKS)
        files["noop.sh"] = SCRIPT
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def script_seconds(samples: int = 200) -> float:
    """What one `exit 0` hook script costs to fork and exec here."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(SCRIPT)
    path = Path(f.name)
    path.chmod(0o755)
    started = time.perf_counter()
    for _ in range(samples):
        subprocess.run([str(path)], check=True, stdin=subprocess.DEVNULL)
    path.unlink()
    return (time.perf_counter() - started) / samples


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, work: Path, hosts: int) -> None:
        self.server: EmbeddedServer = start_embedded(
            ServerConfig(data_dir=work / "server", port=free_port())
        )
        parser = configparser.ConfigParser()
        parser.read(self.server.credentials_path)
        keys = parser["default"]
        session = boto3.Session(
            aws_access_key_id=keys["aws_access_key_id"],
            aws_secret_access_key=keys["aws_secret_access_key"],
            region_name="us-east-1",
        )
        url = self.server.url
        self.cd = session.client("codedeploy", endpoint_url=url)
        self.s3 = session.client("s3", endpoint_url=url)
        self.hosts: list[LocalHost] = []
        from shipyard.cli.client import ShipyardClient

        client = ShipyardClient(url, "us-east-1", session)
        for i in range(hosts):
            name = f"bench-{i:03d}"
            self.cd.register_on_premises_instance(
                instanceName=name, iamUserArn=f"arn:aws:iam::000000000000:user/{name}"
            )
            self.cd.add_tags_to_on_premises_instances(
                instanceNames=[name], tags=[{"Key": "bench", "Value": "yes"}]
            )
            creds = client.call_extension(
                "ShipyardIssueInstanceCredentials", {"instanceName": name}
            )
            host = prepare_host(
                work / "hosts",
                name,
                url,
                (creds["accessKeyId"], creds["secretAccessKey"], creds["hostIdentifier"]),
                isolate=False,
            )
            host.start()
            self.hosts.append(host)
        self.cd.create_application(applicationName="bench")
        self.cd.create_deployment_group(
            applicationName="bench",
            deploymentGroupName="fleet",
            serviceRoleArn="arn:aws:iam::000000000000:role/bench",
            deploymentConfigName="CodeDeployDefault.AllAtOnce",
            onPremisesInstanceTagFilters=[
                {"Key": "bench", "Value": "yes", "Type": "KEY_AND_VALUE"}
            ],
        )
        self.s3.create_bucket(Bucket="bench")

    def revision(self, key: str, data: bytes) -> dict[str, Any]:
        etag = self.s3.put_object(Bucket="bench", Key=key, Body=data)["ETag"].strip('"')
        return {
            "revisionType": "S3",
            "s3Location": {"bucket": "bench", "key": key, "bundleType": "zip", "eTag": etag},
        }

    def deploy(self, revision: dict[str, Any]) -> tuple[float, float]:
        started = time.perf_counter()
        deployment_id = self.cd.create_deployment(
            applicationName="bench", deploymentGroupName="fleet", revision=revision
        )["deploymentId"]
        while True:
            info = self.cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                break
            time.sleep(0.005)
        wall = time.perf_counter() - started
        if info["status"] != "Succeeded":
            raise SystemExit(f"deployment {deployment_id} ended {info['status']}: {info}")
        server_side = (info["completeTime"] - info["createTime"]).total_seconds()
        return wall, server_side

    def close(self) -> None:
        stop_all(self.hosts)
        self.server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hosts", default="1,20")
    args = parser.parse_args()
    per_script = script_seconds()
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine: {cores} cores, python {sys.version.split()[0]}; "
        f"one `exit 0` hook script costs {per_script * 1000:.2f} ms"
    )
    print(
        f"{'hosts':>5}  {'hooks':<15} {'wall med':>9} {'wall min':>9} {'server med':>10} "
        f"{'overhead med':>12} {'per host-event':>14}"
    )
    for count in (int(n) for n in args.hosts.split(",")):
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
            bench = Bench(Path(tmp), count)
            try:
                time.sleep(1.0)  # let every agent settle into its long poll
                idle = [rss_kib(h.process.pid) for h in bench.hosts if h.process]
                for with_scripts in (False, True):
                    revision = bench.revision(f"noop-{with_scripts}.zip", bundle(with_scripts))
                    bench.deploy(revision)  # warm-up: first download, imports
                    results = [bench.deploy(revision) for _ in range(args.repeat)]
                    walls = [w for w, _ in results]
                    servers = [s for _, s in results]
                    script_time = 5 * per_script if with_scripts else 0.0
                    overhead = statistics.median(walls) - script_time
                    label = "exit 0 scripts" if with_scripts else "no scripts"
                    print(
                        f"{count:>5}  {label:<15} {statistics.median(walls):>8.3f}s "
                        f"{min(walls):>8.3f}s {statistics.median(servers):>9.3f}s "
                        f"{overhead:>11.3f}s {overhead / (count * 7) * 1000:>11.2f} ms"
                    )
                after = [rss_kib(h.process.pid) for h in bench.hosts if h.process]
                print(
                    f"       agent RSS: idle {max(idle) / 1024:.1f} MiB (max of {len(idle)}), "
                    f"after {2 * (args.repeat + 1)} deployments {max(after) / 1024:.1f} MiB"
                )
            finally:
                bench.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
