"""The stock AWS CodeDeploy agent (Ruby, release 1.8.1, unchanged) against Shipyard.

The agent comes from the shared fixtures folder (``../shared/fixtures/`` beside the
repository), unpacked here and run in the foreground by a small launcher; Ruby and its
gems come from Debian (scripts/install). It gets its two config files from
``shipyard instance register --format codedeploy`` and reaches the server by host name
over HTTPS: ``shipyard.localhost``, which each agent's private mount namespace resolves
through an /etc/hosts this test writes, so the agent's S3 client addresses the bundle
bucket virtual-hosted (``bundles.shipyard.localhost``), as it would a real wildcard name.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.agent.client import REPORTED_VERSION
from shipyard.cli.codedeploy_files import ONPREMISES_FILE, SETTINGS_FILE
from shipyard.demo.fleet import LocalHost
from tests.conftest import service_missing
from tests.e2e.conftest import (
    SHARED_ROOT,
    Fleet,
    fleet_on_server,
    make_bundle,
    make_uploader,
)
from tests.e2e.test_failures import event_of
from tests.e2e.test_in_place import setup_group
from tests.support import call_extension, wait_until
from tests.test_cli import cli_env

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
AGENT_TARBALL = FIXTURES / "aws-codedeploy-agent-1.8.1.tar.gz"
LAUNCHER = Path(__file__).with_name("stock_agent_launcher.rb")
DOMAIN = "shipyard.localhost"
BUCKET = "bundles"
POLL_SECONDS = 1.0
STOCK_VERSION = "OFFICIAL_1.8.1-99_deb"
# The gems the agent loads, from Debian and (gli) the fixtures folder.
GEMS = ["aws-sdk-core", "aws-sdk-s3", "zip", "archive/tar/minitar", "concurrent", "logging"]
GEMS += ["json", "gli"]


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def stock_agent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent's source tree, unpacked from the fixture."""
    if not AGENT_TARBALL.is_file():
        service_missing(f"the stock CodeDeploy agent fixture ({AGENT_TARBALL})")
    if shutil.which("ruby") is None:
        service_missing("Ruby for the stock CodeDeploy agent (scripts/install installs it)")
    probe = "".join(f"require {gem!r};" for gem in GEMS)
    found = subprocess.run(["ruby", "-e", probe], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        service_missing(f"the stock agent's gems (scripts/install): {found.stderr.strip()}")
    base = tmp_path_factory.mktemp("stock-agent")
    with tarfile.open(AGENT_TARBALL) as archive:
        archive.extractall(base, filter="tar")
    return base / "aws-codedeploy-agent"


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the server's name, every bucket under it, and
    127.0.0.1 (the test's own clients)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    names = f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN},IP:127.0.0.1"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={DOMAIN}", "-addext", names),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class StockHost(LocalHost):
    """A host running the stock agent: its own /etc/hosts and view of SHARED_ROOT."""

    agent_dir: Path = Path()
    settings_path: Path = Path()

    def command(self) -> list[str]:
        hosts_file = self.home / "hosts"
        hosts_file.write_text(f"127.0.0.1 localhost {DOMAIN} {BUCKET}.{DOMAIN}\n")
        mounts = [f"mount --bind {shlex.quote(str(hosts_file))} /etc/hosts"]
        for shared in self.shared_paths:
            private = self.home / "fs" / shared.relative_to("/")
            mounts.append(f"mount --bind {shlex.quote(str(private))} {shlex.quote(str(shared))}")
        agent = ["ruby", str(LAUNCHER), str(self.agent_dir), str(self.settings_path)]
        script = " && ".join([*mounts, "exec " + shlex.join(agent)])
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the whole group and wait until it is gone: the agent's master exits on
        SIGTERM at once, while its forked child first finishes the poll it holds open."""
        if self.process is None:
            return
        process, group = self.process, self.process.pid

        def gone() -> bool:
            # poll() reaps the master, which would otherwise linger as a zombie.
            return process.poll() is not None and not _group_alive(group)

        for signum in (sig, signal.SIGKILL):  # SIGKILL only if the agent hangs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signum)
            with contextlib.suppress(AssertionError):
                wait_until(gone, f"the stock agent of {self.name} to exit", timeout)
                break

    def scripts_log(self) -> str:
        """The hook output the agent keeps on the host (it sends the server only the
        tail of a failing script's)."""
        found = sorted((self.home / "deployment-root").glob("*/*/logs/scripts.log"))
        return "\n".join(p.read_text(errors="replace") for p in found)

    def wire_log(self) -> str:
        """What the agent sent (with ``:log_aws_wire: true``)."""
        return (self.home / "log" / "codedeploy-agent.aws_wire.log").read_text(errors="replace")

    def log_text(self) -> str:
        logs = sorted((self.home / "log").glob("*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)


class StockFleet(Fleet):
    """Stock agents beside Shipyard's own (``add_hosts``), all trusting the certificate."""

    agent_dir: Path

    @property
    def endpoint(self) -> str:
        """The server by name, as the stock agents reach it."""
        return f"https://{DOMAIN}:{self.server.url.rpartition(':')[2]}"

    def add_stock_host(self, name: str, tags: dict[str, str], **settings: Any) -> StockHost:
        """Register ``name`` with the CLI's ``--format codedeploy``, and start the stock
        agent on those files, with ``settings`` added to its codedeployagent.yml."""
        home = self.base / name
        conf = home / "conf"
        conf.mkdir(parents=True)
        env = cli_env(self.server)
        env["AWS_CA_BUNDLE"] = str(self.cafile)
        tag_flags = [f"--tag={key}={value}" for key, value in tags.items()]
        registered = subprocess.run(
            [
                *(sys.executable, "-m", "shipyard", "instance", "register", name, *tag_flags),
                *(
                    "--format",
                    "codedeploy",
                    "--endpoint",
                    self.endpoint,
                    "--agent-config",
                    str(conf),
                ),
                *("--root-dir", str(home / "deployment-root"), "--log-dir", str(home / "log")),
                *("--pid-dir", str(home / "pid")),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert registered.returncode == 0, registered.stderr
        # Fast polling (the server holds each poll open) and a quick shutdown.
        fast = {"wait_between_runs": 0, "kill_agent_max_wait_time_seconds": 5, "verbose": True}
        with (conf / SETTINGS_FILE).open("a") as out:
            for key, value in {**fast, **settings}.items():
                out.write(f":{key}: {yaml.safe_dump(value).splitlines()[0]}\n")
        for path in (SHARED_ROOT, *(home / d for d in ("fs/srv/shipyard-e2e", "log", "pid"))):
            path.mkdir(parents=True, exist_ok=True)
        # As an installed agent has it beside its root dir; it sends it on every call.
        (home / ".version").write_text(f"agent_version: {STOCK_VERSION}\n")
        host = StockHost(
            name,
            home,
            conf / ONPREMISES_FILE,
            (SHARED_ROOT,),
            True,
            agent_dir=self.agent_dir,
            settings_path=conf / SETTINGS_FILE,
        )
        self.hosts.append(host)
        host.start(env={"PATH": os.environ["PATH"], "SSL_CERT_FILE": str(self.cafile)})
        return host

    def deploy(self, bundle: bytes, key: str) -> dict[str, Any]:
        revision = make_uploader(self.server, verify=str(self.cafile))(key, bundle)
        deployment_id = self.cd.create_deployment(
            applicationName="shop", deploymentGroupName="web", revision=revision
        )["deploymentId"]
        try:
            return self.wait(deployment_id, timeout=120)
        except AssertionError as exc:
            logs = {h.name: h.log_text() for h in self.hosts if isinstance(h, StockHost)}
            raise AssertionError(f"{exc}\nstock agent logs: {logs}") from None

    def event_logs(self, deployment_id: str, target: str) -> dict[str, str]:
        logs = call_extension(
            self.server,
            "ShipyardGetLifecycleEventLog",
            {"deploymentId": deployment_id, "targetId": target},
            cafile=self.cafile,
        )
        return {e["lifecycleEventName"]: e["log"] for e in logs["events"]}


@pytest.fixture
def stock_fleet(
    tmp_path: Path, certificate: tuple[Path, Path], stock_agent: Path
) -> Iterator[StockFleet]:
    cert, key = certificate
    options: dict[str, Any] = {"tls_cert": str(cert), "tls_key": str(key)}
    # Polls held briefly: a stopping stock agent waits for the one it has open.
    options |= {"bucket_domain": DOMAIN, "poll_seconds": POLL_SECONDS}
    for fleet in fleet_on_server(tmp_path, **options):
        stock = StockFleet(fleet.server, fleet.base, fleet.isolate, fleet.hosts)
        stock.cafile, stock.agent_dir = cert, stock_agent
        setup_group(stock, [], "CodeDeployDefault.AllAtOnce")
        yield stock


def site_bundle(page: str, hook: str = "#!/bin/sh\necho hook saw $LIFECYCLE_EVENT\n") -> bytes:
    return make_bundle(
        {
            "appspec.yml": (
                "version: 0.0\nos: linux\nfiles:\n"
                f"  - source: site\n    destination: {SHARED_ROOT}/stock-www\n"
                "hooks:\n"
                "  AfterInstall:\n    - location: scripts/hook.sh\n"
                "  ValidateService:\n    - location: scripts/check.sh\n"
            ),
            "site/index.html": page,
            "scripts/hook.sh": hook,
            "scripts/check.sh": f"#!/bin/sh\ncat {SHARED_ROOT}/stock-www/index.html\n",
        },
        kind="tgz",
    )


def test_stock_agent_deploys_with_hooks(stock_fleet: StockFleet) -> None:
    host = stock_fleet.add_stock_host("stock-1", {"role": "web"}, log_aws_wire=True)
    info = stock_fleet.deploy(site_bundle("served by the stock agent"), "shop/v1.tgz")
    assert info["status"] == "Succeeded", info

    target = stock_fleet.targets(info["deploymentId"])["stock-1"]
    assert target["status"] == "Succeeded"
    assert {e["status"] for e in target["lifecycleEvents"]} <= {"Succeeded", "Skipped"}
    assert event_of(target, "DownloadBundle")["status"] == "Succeeded"
    page = host.view(SHARED_ROOT / "stock-www" / "index.html")
    assert page.read_text() == "served by the stock agent"
    # The stock agent keeps hook output on the host; the server gets it only on failure.
    scripts_log = host.scripts_log()
    assert "LifecycleEvent - AfterInstall" in scripts_log
    assert "[stdout]hook saw AfterInstall" in scripts_log
    assert "[stdout]served by the stock agent" in scripts_log
    # It fetched the bundle itself with its S3 client, virtual-hosted.
    wire = host.wire_log()
    assert f"Host: {BUCKET}.{DOMAIN}:" in wire
    assert "X-Amz-Target: CodeDeployCommandService_v20141006.PollHostCommand" in wire


def test_failing_hook_reports_script_failed_with_the_log_tail(stock_fleet: StockFleet) -> None:
    # This agent speaks the "secure" command service (CodeDeployCommandService.*).
    host = stock_fleet.add_stock_host(
        "stock-1", {"role": "web"}, enable_auth_policy=True, log_aws_wire=True
    )
    hook = "#!/bin/sh\necho about to fail\necho broken config >&2\nexit 3\n"
    info = stock_fleet.deploy(site_bundle("never served", hook), "shop/bad.tgz")
    assert info["status"] == "Failed", info

    target = stock_fleet.targets(info["deploymentId"])["stock-1"]
    event = event_of(target, "AfterInstall")
    assert event["status"] == "Failed"
    diagnostics = event["diagnostics"]
    assert diagnostics["errorCode"] == "ScriptFailed"
    assert diagnostics["scriptName"] == "scripts/hook.sh"
    assert "exit code 3" in diagnostics["message"]
    assert "about to fail" in diagnostics["logTail"]
    assert "broken config" in diagnostics["logTail"]
    assert event_of(target, "ValidateService")["status"] == "Skipped"
    wire = host.wire_log()
    assert "X-Amz-Target: CodeDeployCommandService.PollHostCommand" in wire
    assert "/codedeploy-commands-secure/aws4_request" in wire


def test_stock_and_shipyard_agents_share_a_deployment(stock_fleet: StockFleet) -> None:
    stock = stock_fleet.add_stock_host("stock-1", {"role": "web"})
    stock_fleet.add_hosts(["shipyard-1"], {"role": "web"})
    own = stock_fleet.host("shipyard-1")
    info = stock_fleet.deploy(site_bundle("one release, two agents"), "shop/both.tgz")
    assert info["status"] == "Succeeded", info
    assert info["deploymentOverview"]["Succeeded"] == 2

    targets = stock_fleet.targets(info["deploymentId"])
    assert {name: t["status"] for name, t in targets.items()} == {
        "stock-1": "Succeeded",
        "shipyard-1": "Succeeded",
    }
    for host in (stock, own):
        page = host.view(SHARED_ROOT / "stock-www" / "index.html")
        assert page.read_text() == "one release, two agents"
    assert "[stdout]hook saw AfterInstall" in stock.scripts_log()
    own_logs = stock_fleet.event_logs(info["deploymentId"], "shipyard-1")
    assert "hook saw AfterInstall" in own_logs["AfterInstall"]
    # Each agent's version as the fleet view reports it.
    fleet = call_extension(
        stock_fleet.server, "ShipyardListInstanceStatus", {}, cafile=stock_fleet.cafile
    )
    assert {i["instanceName"]: i["agentVersion"] for i in fleet["instances"]} == {
        "stock-1": f"codedeploy-agent {STOCK_VERSION}",
        "shipyard-1": REPORTED_VERSION,
    }
