"""vs_ansible.py's job run by pyinfra, on N local "hosts" (one directory each).

Run by vs_ansible.py: python bench/pyinfra_job.py WORK_DIR HOSTS BUNDLE_ZIP

pyinfra's own ``@local`` connector allows one host per inventory. Ansible's side of
the comparison runs 100 hosts with ``ansible_connection=local``, each with a directory
of its own; to give pyinfra the same, this file registers ``@hostdir/NAME``: pyinfra's
local connector unchanged (commands run as local subprocesses, files copied locally),
only allowing many names. It then runs pyinfra's own command line on an inventory and a
deploy file written into WORK_DIR, with ``--parallel HOSTS`` (every host at once, as
Ansible's forks = 100 and Shipyard's AllAtOnce) and no fact gathering beyond what
the operations themselves need.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEPLOY = """\
from pyinfra import host
from pyinfra.operations import files, server

root = host.data.dest_root
files.directory(name="host directory", path=f"{{root}}/app")
files.put(name="copy the bundle", src={bundle!r}, dest=f"{{root}}/bundle.zip")
server.shell(name="unpack it", commands=[f"unzip -q -o {{root}}/bundle.zip -d {{root}}/app"])
{scripts}"""
SCRIPT_OP = 'server.shell(name="run {script}", commands=[f"sh {{root}}/app/{script}"])\n'


def write_job(work: Path, hosts: int, bundle: Path, scripts: list[str]) -> None:
    lines = [
        f"    ('@hostdir/h{i:03d}', {{'dest_root': {str(work / 'hosts' / f'h{i:03d}')!r}}}),"
        for i in range(hosts)
    ]
    (work / "inventory.py").write_text("hosts = [\n" + "\n".join(lines) + "\n]\n")
    ops = "".join(SCRIPT_OP.format(script=s) for s in scripts)
    (work / "deploy.py").write_text(DEPLOY.format(bundle=str(bundle), scripts=ops))


def main() -> int:
    # Imported here, not at the top: vs_ansible.py imports write_job, and pyinfra's
    # command line monkey-patches the whole process for gevent when imported.
    from pyinfra.api import connectors as pyinfra_connectors
    from pyinfra.api import inventory as pyinfra_inventory
    from pyinfra.connectors.local import LocalConnector
    from pyinfra_cli.main import cli

    class HostDirConnector(LocalConnector):  # type: ignore[misc]
        """pyinfra's local connector, under any number of names."""

        @staticmethod
        def make_names_data(
            name: str | None = None,
        ) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
            yield f"@hostdir/{name}", {}, []

    def with_hostdir(found: Any) -> Any:
        def connectors() -> dict[str, Any]:
            return {**found(), "hostdir": HostDirConnector}

        return connectors

    work, hosts = Path(sys.argv[1]), int(sys.argv[2])
    # The inventory resolves connectors through these two names (imported into it).
    for module in (pyinfra_inventory, pyinfra_connectors):
        module.get_all_connectors = with_hostdir(pyinfra_connectors.get_all_connectors)  # type: ignore[attr-defined]
        module.get_execution_connectors = with_hostdir(  # type: ignore[attr-defined]
            pyinfra_connectors.get_execution_connectors
        )
    args = [str(work / "inventory.py"), str(work / "deploy.py"), "-y", "--parallel", str(hosts)]
    cli.main(args=args, prog_name="pyinfra", standalone_mode=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
