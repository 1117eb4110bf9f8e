"""Side by side with Ansible: the same job on 10 and 100 hosts, both measured in one run.

Run: .venv/bin/python bench/vs_ansible.py [--hosts 10,100] [--repeat 2]

The job: copy a 1 MiB bundle to each host, unpack it, run five small scripts from it.

Ansible (``ansible-core``, from the project's dev dependencies): one play over N
inventory hosts, each ``ansible_connection=local`` with a directory of its own
(``dest_root``); tasks ``copy`` (the zip), ``unarchive`` (remote_src), then five
``command`` tasks, one per script; ``gather_facts: false``, ``forks = 100`` (so every
host runs at once, as Shipyard's AllAtOnce does) and ``pipelining = True``: Ansible's
fastest settings for this job. Each run starts from empty host directories.

Shipyard: N real agents (started beforehand, not timed) and an AllAtOnce deployment
of the same zip, whose appspec maps the five scripts to ApplicationStop,
BeforeInstall, AfterInstall, ApplicationStart and ValidateService. Timed from the
bundle upload to the server until GetDeployment reports Succeeded. ApplicationStop
runs the previous revision's script, so a warm-up deployment comes first (Ansible
gets a warm-up run too).

Prints the median wall time of each tool per fleet size and the ratio
Ansible / Shipyard (target: at least 10 at 100 hosts).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import HOOKS, Admin, AgentFleet, ServerProcess, zip_bundle

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
        for i in range(hosts):
            payload = self.hosts_dir / f"h{i:03d}" / "app" / "data" / "payload.bin"
            if payload.stat().st_size != BUNDLE_DATA_BYTES:
                raise RuntimeError(f"Ansible did not unpack the bundle on h{i:03d}")


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
    args = parser.parse_args()
    ansible_bin()
    version = subprocess.run(
        [str(ansible_bin()), "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    bundle = job_bundle()
    print(
        f"job: copy a {len(bundle) / 1024 / 1024:.2f} MiB zip, unpack it, run 5 scripts; "
        f"{version}, forks=100, pipelining on, gather_facts off; "
        f"median of {args.repeat} runs after a warm-up"
    )
    print(f"{'hosts':>5} {'Ansible':>9} {'Shipyard':>9} {'ratio':>7}")
    for hosts in (int(n) for n in args.hosts.split(",")):
        with tempfile.TemporaryDirectory(prefix="shipyard-vs-ansible-") as tmp:
            work = Path(tmp)
            bundle_path = work / "bundle.zip"
            bundle_path.write_bytes(bundle)
            ansible_dir = work / "ansible"
            ansible_dir.mkdir()
            ansible = AnsibleRun(ansible_dir, bundle_path, hosts)
            ansible.run()  # warm-up
            ansible_walls = [ansible.run() for _ in range(args.repeat)]
            ansible.check(hosts)
            shutil.rmtree(ansible.hosts_dir, ignore_errors=True)
            shipyard_walls, server_cpu, agents_cpu = shipyard_runs(
                work / "shipyard", bundle, hosts, args.repeat
            )
        a, s = statistics.median(ansible_walls), statistics.median(shipyard_walls)
        verdict = ""
        if hosts >= 100:
            verdict = (
                f"  target >= {TARGET_RATIO:g}x: {'met' if a / s >= TARGET_RATIO else 'MISSED'}"
            )
        print(
            f"{hosts:>5} {a:>8.2f}s {s:>8.2f}s {a / s:>6.1f}x{verdict}\n"
            f"      (Shipyard's last run: server CPU {server_cpu:.1f} s, "
            f"agents CPU {agents_cpu:.1f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
