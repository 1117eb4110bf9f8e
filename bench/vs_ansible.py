"""Side by side with Ansible and pyinfra: the same job on 10 and 100 hosts, all three
measured in one run.

Run: .venv/bin/python bench/vs_ansible.py [--hosts 10,100] [--repeat 2]
         [--peers ansible,pyinfra]

The job: copy a 1 MiB bundle to each host, unpack it, run five small scripts from it.

Ansible (``ansible-core``, from the project's dev dependencies): one play over N
inventory hosts, each ``ansible_connection=local`` with a directory of its own
(``dest_root``); tasks ``copy`` (the zip), ``unarchive`` (remote_src), then five
``command`` tasks, one per script; ``gather_facts: false``, ``forks = 100`` (so every
host runs at once, as Shipyard's AllAtOnce does) and ``pipelining = True``: Ansible's
fastest settings for this job. Each run starts from empty host directories.

pyinfra (pinned in the dev dependencies; ``pyinfra_job.py``): the same steps as
operations (``files.directory``, ``files.put``, ``server.shell`` running ``unzip``, then
one ``server.shell`` per script) over N hosts of its local connector, each with a
directory of its own, ``--parallel N``. Each run starts from empty host directories.

Shipyard: N real agents (started beforehand, not timed) and an AllAtOnce deployment
of the same zip, whose appspec maps the five scripts to ApplicationStop,
BeforeInstall, AfterInstall, ApplicationStart and ValidateService. Timed from the
bundle upload to the server until GetDeployment reports Succeeded. ApplicationStop
runs the previous revision's script, so a warm-up deployment comes first (Ansible
gets a warm-up run too).

Prints the median wall time of each tool per fleet size and the ratios
Ansible / Shipyard (target: at least 10 at 100 hosts) and pyinfra / Shipyard.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HOOKS, Admin, AgentFleet, ServerProcess, zip_bundle
from pyinfra_job import write_job

BUNDLE_DATA_BYTES = 1024 * 1024
SCRIPTS = [f"scripts/step{i}.sh" for i in range(1, 6)]
TARGET_RATIO = 10.0
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: host directory
      ansible.builtin.file: {{path: "{{{{ dest_root }}}}/app", state: directory}}
    - name: copy the bundle
      ansible.builtin.copy: {{src: "{bundle}", dest: "{{{{ dest_root }}}}/bundle.zip"}}
    - name: unpack it
      ansible.builtin.unarchive:
        src: "{{{{ dest_root }}}}/bundle.zip"
        dest: "{{{{ dest_root }}}}/app"
        remote_src: true
{scripts}"""
SCRIPT_TASK = """\
    - name: run {script}
      ansible.builtin.command: "{{{{ dest_root }}}}/app/{script}"
"""
ANSIBLE_CFG = """\
[defaults]
forks = 100
host_key_checking = False
gathering = explicit
retry_files_enabled = False
stdout_callback = ansible.builtin.default
local_tmp = {work}/ansible-local-tmp
remote_tmp = {work}/ansible-remote-tmp

[connection]
pipelining = True
"""


def job_bundle() -> bytes:
    """1 MiB of incompressible data, the five scripts, and an appspec for Shipyard."""
    data = random.Random(1).randbytes(BUNDLE_DATA_BYTES)
    files: dict[str, bytes | str] = {"data/payload.bin": data}
    for number, script in enumerate(SCRIPTS, 1):
        files[script] = f'#!/bin/sh\necho "step {number} on $(hostname)" > /dev/null\n'
    hooks = "".join(
        f"  {hook}:\n    - location: {script}\n"
        for hook, script in zip(HOOKS, SCRIPTS, strict=True)
    )
    return zip_bundle(files, f"version: 0.0\nos: linux\nhooks:\n{hooks}")


def ansible_bin() -> Path:
    found = Path(sys.executable).with_name("ansible-playbook")
    if not found.exists():
        raise SystemExit(
            "ansible-playbook is not installed in this environment: install the project's "
            "dev dependencies (pip install -e '.[dev]'), which include ansible-core"
        )
    return found


class AnsibleRun:
    def __init__(self, work: Path, bundle: Path, hosts: int) -> None:
        self.work = work
        self.hosts_dir = work / "hosts"
        (work / "ansible.cfg").write_text(ANSIBLE_CFG.format(work=work))
        scripts = "".join(SCRIPT_TASK.format(script=s) for s in SCRIPTS)
        (work / "play.yml").write_text(PLAYBOOK.format(bundle=bundle, scripts=scripts))
        lines = ["[all]"] + [
            f"h{i:03d} ansible_connection=local ansible_python_interpreter={sys.executable} "
            f"dest_root={self.hosts_dir / f'h{i:03d}'}"
            for i in range(hosts)
        ]
        (work / "inventory.ini").write_text("\n".join(lines) + "\n")

    def run(self) -> float:
        shutil.rmtree(self.hosts_dir, ignore_errors=True)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(self.work),
            "ANSIBLE_HOME": str(self.work / "ansible-home"),
            "ANSIBLE_CONFIG": str(self.work / "ansible.cfg"),
            "LANG": "C.UTF-8",
        }
        started = time.perf_counter()
        done = subprocess.run(
            [str(ansible_bin()), "-i", "inventory.ini", "play.yml"],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            start_new_session=True,
            timeout=1800,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(
                f"ansible-playbook failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        return wall

    def check(self, hosts: int) -> None:
        _check_unpacked("Ansible", self.hosts_dir, hosts)


class PyinfraRun:
    def __init__(self, work: Path, bundle: Path, hosts: int) -> None:
        self.work = work
        self.hosts = hosts
        self.hosts_dir = work / "hosts"
        write_job(work, hosts, bundle, SCRIPTS)

    def run(self) -> float:
        shutil.rmtree(self.hosts_dir, ignore_errors=True)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(self.work),
            "LANG": "C.UTF-8",
        }
        job = Path(__file__).with_name("pyinfra_job.py")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(job), str(self.work), str(self.hosts)],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            start_new_session=True,
            timeout=1800,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"pyinfra failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return wall

    def check(self, hosts: int) -> None:
        _check_unpacked("pyinfra", self.hosts_dir, hosts)


def _check_unpacked(tool: str, hosts_dir: Path, hosts: int) -> None:
    for i in range(hosts):
        payload = hosts_dir / f"h{i:03d}" / "app" / "data" / "payload.bin"
        if payload.stat().st_size != BUNDLE_DATA_BYTES:
            raise RuntimeError(f"{tool} did not unpack the bundle on h{i:03d}")


def peer_walls(tool: str, work: Path, bundle: Path, hosts: int, repeat: int) -> list[float]:
    """Wall times of ``repeat`` runs of ``tool`` after a warm-up; its host directories
    removed afterwards."""
    work.mkdir()
    peer = AnsibleRun(work, bundle, hosts) if tool == "ansible" else PyinfraRun(work, bundle, hosts)
    peer.run()  # warm-up
    walls = [peer.run() for _ in range(repeat)]
    peer.check(hosts)
    shutil.rmtree(peer.hosts_dir, ignore_errors=True)
    return walls


def shipyard_runs(
    work: Path, bundle: bytes, hosts: int, repeat: int
) -> tuple[list[float], float, float]:
    """Wall times of ``repeat`` deployments; the server's and the agents' CPU seconds
    over the last one."""
    server = ServerProcess(work / "server")
    fleet: AgentFleet | None = None
    try:
        admin = Admin(server)
        fleet = AgentFleet(admin, work / "agents", "job")
        fleet.start(hosts)
        admin.group("job", "fleet", "job")
        interval = 0.005 if hosts <= 10 else 0.02
        revision = admin.upload("bench", "job-warm-up.zip", bundle)
        admin.deploy("job", "fleet", revision, poll_interval=interval)  # warm-up
        walls = []
        server_cpu = agents_cpu = 0.0
        for run in range(repeat):
            started, server0, agents0 = time.perf_counter(), server.cpu(), fleet.cpu()
            revision = admin.upload("bench", f"job-{run}.zip", bundle)
            admin.deploy("job", "fleet", revision, poll_interval=interval)
            walls.append(time.perf_counter() - started)
            server_cpu, agents_cpu = server.cpu() - server0, fleet.cpu() - agents0
        return walls, server_cpu, agents_cpu
    finally:
        if fleet is not None:
            fleet.stop()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="10,100")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--peers", default="ansible,pyinfra", help="ansible, pyinfra or both")
    args = parser.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    versions = []
    if "ansible" in peers:
        ansible_bin()
        versions.append(
            subprocess.run(
                [str(ansible_bin()), "--version"], capture_output=True, text=True, check=True
            ).stdout.splitlines()[0]
            + " (forks=100, pipelining on, gather_facts off)"
        )
    if "pyinfra" in peers:
        versions.append(f"pyinfra {importlib.metadata.version('pyinfra')} (--parallel N)")
    bundle = job_bundle()
    print(
        f"job: copy a {len(bundle) / 1024 / 1024:.2f} MiB zip, unpack it, run 5 scripts; "
        f"{'; '.join(versions)}; median of {args.repeat} runs after a warm-up"
    )
    names = {"ansible": "Ansible", "pyinfra": "pyinfra"}
    print(
        f"{'hosts':>5} "
        + "".join(f"{names[p]:>9} " for p in peers)
        + f"{'Shipyard':>9} "
        + "".join(f"{names[p] + ' / Shipyard':>19}" for p in peers)
    )
    for hosts in (int(n) for n in args.hosts.split(",")):
        medians: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="shipyard-vs-ansible-") as tmp:
            work = Path(tmp)
            bundle_path = work / "bundle.zip"
            bundle_path.write_bytes(bundle)
            for peer in peers:
                walls = peer_walls(peer, work / peer, bundle_path, hosts, args.repeat)
                medians[peer] = statistics.median(walls)
            shipyard_walls, server_cpu, agents_cpu = shipyard_runs(
                work / "shipyard", bundle, hosts, args.repeat
            )
        s = statistics.median(shipyard_walls)
        verdict = ""
        if hosts >= 100 and "ansible" in medians:
            met = medians["ansible"] / s >= TARGET_RATIO
            verdict = f"  Ansible target >= {TARGET_RATIO:g}x: {'met' if met else 'MISSED'}"
        print(
            f"{hosts:>5} "
            + "".join(f"{medians[p]:>8.2f}s " for p in peers)
            + f"{s:>8.2f}s "
            + "".join(f"{medians[p] / s:>18.1f}x" for p in peers)
            + f"{verdict}\n      (Shipyard's last run: server CPU {server_cpu:.1f} s, "
            f"agents CPU {agents_cpu:.1f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
