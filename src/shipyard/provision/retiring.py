"""Removing provisioned hosts, whichever replica retires them.

A host runs on the machine of the node whose provisioner started it (a Podman
container, its files in that node's data directory), so only that node can remove it.
The blue/green step that retires hosts runs on any replica: it marks them retiring in
the database (``store/provisioned.py``), in its own transaction, and every node's
``RetiredHosts`` worker removes its own marked hosts within a second or so. A node is
a machine and a data directory: a replica restarted there picks up what it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path

from sqlalchemy import Connection

from shipyard.provision import Provisioner, ProvisionError
from shipyard.store import provisioned
from shipyard.store.db import Database

log = logging.getLogger("shipyard.provision")

REMOVE_EVERY_SECONDS = 1.0


def node_name(data_dir: Path) -> str:
    """The node a server process is: its machine and data directory."""
    return f"{socket.gethostname()}:{data_dir.resolve()}"[:128]


def retire(conn: Connection, name: str, node: str) -> None:
    """Ask for ``name``'s removal by the node that started it (``node``, this one, when
    the host was started before hosts were recorded)."""
    if provisioned.owner(conn, name) is None:
        provisioned.record(conn, name, node, 0.0)
    provisioned.mark_retiring(conn, name)


class RetiredHosts:
    """Removes this node's hosts that some replica retired."""

    def __init__(self, db: Database, provisioner: Provisioner, node: str) -> None:
        self.db = db
        self.provisioner = provisioner
        self.node = node
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(REMOVE_EVERY_SECONDS)
            try:
                await self.remove()
            except Exception:
                log.exception("removing retired hosts failed")

    async def remove(self) -> list[str]:
        """Remove this node's retiring hosts; the names removed. The database is read
        on the event loop, the provisioner called in a thread (it blocks)."""
        with self.db.tx() as conn:
            names = provisioned.retiring(conn, self.node)
        removed: list[str] = []
        for name in names:
            try:
                await asyncio.to_thread(self.provisioner.stop_host, name)
            except ProvisionError as exc:
                log.warning("could not remove provisioned host %s: %s", name, exc)
                continue
            with self.db.tx() as conn:
                provisioned.forget(conn, name)
            removed.append(name)
        return removed
