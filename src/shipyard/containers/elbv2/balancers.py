"""The load balancers' HAProxy processes, kept in line with the store.

``apply`` is the one way a change reaches HAProxy: it renders the load balancer from
the store (as the caller's transaction sees it) and does the least that makes HAProxy
match: start it, reload it when the structure changed (haproxy_config), or else change
the map and the servers through the runtime API. Callers hold ``lock`` around their
transaction and ``apply``, so changes reach HAProxy in the order they were stored; an
``apply`` that fails rolls the transaction back.

The server runs this as a worker: at start every stored load balancer is adopted (its
HAProxy still runs from before) or started again; while running, a sweeper finishes
deregistrations (a draining target goes when idle or at its deadline) and, every few
seconds, applies every load balancer again (a dead HAProxy is restarted; a change
another replica stored reaches this machine).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from shipyard.containers.elbv2 import haproxy_config, topology
from shipyard.containers.elbv2.health import TargetHealth, describe
from shipyard.containers.elbv2.names import last_part
from shipyard.containers.elbv2.process import BalancerError, BalancerProcess
from shipyard.containers.elbv2.runtime import BalancerRuntime
from shipyard.store import elbv2 as store
from shipyard.store.db import Database
from shipyard.traffic import TrafficError

log = logging.getLogger("shipyard.elbv2")

IDLE_SWEEPS = 2  # a draining target seen idle this many sweeps in a row is removed


@dataclass(frozen=True)
class BalancerSettings:
    directory: Path  # one subdirectory per load balancer
    binary: str  # the haproxy executable
    bind_address: str  # where listeners listen
    time_scale: float  # seconds per second of health-check and deregistration times
    maxconn: int
    keep_running: bool  # leave HAProxy running when the server stops
    sweep_seconds: float = 0.1
    # Every load balancer is brought in line with the store this often: an HAProxy that
    # died is started again, and a change another server replica stored reaches this
    # machine's HAProxy.
    reconcile_seconds: float = 5.0


class LoadBalancers:
    def __init__(self, settings: BalancerSettings, db: Database, clock: Callable[[], float]):
        self.settings = settings
        self.db = db
        self.clock = clock
        self.lock = threading.RLock()
        self._idle: dict[tuple[str, str, int], int] = {}
        self._retry: set[str] = set()  # balancers with a server HAProxy could not delete yet
        # Whether a target may be draining: the sweeper reads the store only then.
        self._draining = True
        self._stopping = threading.Event()
        self._failing: dict[str, str] = {}  # load balancer -> why it could not be applied
        self._thread: threading.Thread | None = None

    def process(self, lb_arn: str) -> BalancerProcess:
        return BalancerProcess(self.settings.directory / last_part(lb_arn), self.settings.binary)

    def apply(self, conn: Connection, lb_arn: str) -> None:
        """Make the balancer's HAProxy match the store; raises BalancerError if it cannot."""
        found = topology.read(conn, lb_arn, self.settings.bind_address, self.settings.time_scale)
        process = self.process(lb_arn)
        maxconn = self.settings.maxconn
        structure = haproxy_config.structure(found, process.files, maxconn)
        full = haproxy_config.full(found, process.files, maxconn)
        map_text = "".join(f"{k} {v}\n" for k, v in haproxy_config.map_entries(found))
        running = process.running_structure()
        if running is None:
            process.start(full, structure, map_text)
        elif running != structure:
            process.reload(full, structure, map_text)
        else:
            try:
                self._change_at_run_time(process, found, map_text, lb_arn)
            except TrafficError as exc:
                # The caller's transaction rolls back; the sweeper then brings HAProxy
                # back in line with what the store still says.
                self._retry.add(lb_arn)
                raise BalancerError(str(exc)) from None
            process.config_file.write_text(full)  # what a later start or reload begins from

    def _change_at_run_time(
        self,
        process: BalancerProcess,
        found: haproxy_config.Topology,
        map_text: str,
        lb_arn: str,
    ) -> None:
        runtime = BalancerRuntime(process.api)
        if process.files.map_file.read_text() != map_text:
            entries = haproxy_config.map_entries(found)
            runtime.replace_map(process.files.map_file, entries)
            process.files.map_file.write_text(map_text)
        self._retry.discard(lb_arn)
        for group in found.groups:
            wanted = {server.name: server for server in found.servers.get(group.backend, ())}
            have = runtime.stats(group.backend)
            for name, server in wanted.items():
                now = have.get(name)
                if now is None:
                    runtime.add(group.backend, server, group.health)
                elif server.draining and now.status not in ("DRAIN", "MAINT"):
                    runtime.drain(group.backend, name)
                elif not server.draining and now.status == "DRAIN":
                    process.api.run(f"set server {group.backend}/{name} state ready")
            for name in have.keys() - wanted.keys():
                if not runtime.delete(group.backend, name):
                    self._retry.add(lb_arn)

    def draining_started(self) -> None:
        self._draining = True

    def remove(self, lb_arn: str) -> None:
        self.process(lb_arn).remove()

    def health(self, conn: Connection, tg_arn: str) -> dict[tuple[str, int], TargetHealth]:
        lb_arn = topology.balancer_of_group(conn, tg_arn)
        group = store.get(conn, store.TARGET_GROUPS, tg_arn)
        if group is None:
            return {}
        stats = None
        if lb_arn is not None:
            runtime = BalancerRuntime(self.process(lb_arn).api)
            try:
                stats = runtime.stats(topology.backend(tg_arn))
            except TrafficError as exc:
                log.warning("cannot read target health of %s: %s", tg_arn, exc)
        check = topology.health_check(group, self.settings.time_scale)
        rows = store.targets(conn, tg_arn)
        return {
            (row.address, row.port): describe(row, lb_arn is not None, stats, check, self.clock())
            for row in rows
        }

    # -- the worker --------------------------------------------------------------------

    def start(self) -> None:
        self.restore()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._sweep_loop, name="elbv2-sweeper", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
        if not self.settings.keep_running:
            self.stop_processes()
        if self.db.dialect == "sqlite":
            self.db.close()  # its own connections (store.db.for_threads); PostgreSQL's is shared

    def stop_processes(self) -> None:
        with self.lock, self.db.tx() as conn:
            for lb in store.find(conn, store.LOAD_BALANCERS):
                self.process(lb["Arn"]).stop()

    def restore(self) -> None:
        """Adopt, start or correct every stored load balancer (at server start, then
        every ``reconcile_seconds``); a failure is logged when it first happens."""
        with self.lock, self.db.tx() as conn:
            for lb in store.find(conn, store.LOAD_BALANCERS):
                arn = lb["Arn"]
                try:
                    self.apply(conn, arn)
                except (BalancerError, TrafficError, OSError) as exc:
                    if self._failing.get(arn) != str(exc):
                        log.error("load balancer %s is not serving: %s", arn, exc)
                    self._failing[arn] = str(exc)
                else:
                    if self._failing.pop(arn, None) is not None:
                        log.info("load balancer %s is serving again", arn)

    def _sweep_loop(self) -> None:
        reconciled = time.monotonic()
        while not self._stopping.wait(self.settings.sweep_seconds):
            try:
                self.sweep()
                if time.monotonic() - reconciled >= self.settings.reconcile_seconds:
                    reconciled = time.monotonic()
                    self.restore()
            except Exception:
                log.exception("the load balancers' sweep failed")

    def sweep(self) -> None:
        """Remove draining targets that are idle or past their deadline."""
        if not self._draining and not self._retry:
            return
        with self.lock, self.db.tx() as conn:
            touched = set(self._retry)
            now = self.clock()
            rows = store.draining(conn)
            self._draining = bool(rows)
            for row in rows:
                if self._drained(conn, row, now):
                    store.remove(conn, row.tg_arn, row.address, row.port)
                    self._idle.pop((row.tg_arn, row.address, row.port), None)
                    lb_arn = topology.balancer_of_group(conn, row.tg_arn)
                    if lb_arn is not None:
                        touched.add(lb_arn)
            for lb_arn in touched:
                try:
                    self.apply(conn, lb_arn)
                except (BalancerError, TrafficError) as exc:
                    log.warning("load balancer %s: %s (tried again next sweep)", lb_arn, exc)
                    self._retry.add(lb_arn)

    def _drained(self, conn: Connection, row: store.TargetRow, now: float) -> bool:
        if row.drain_until is not None and now >= row.drain_until:
            return True
        lb_arn = topology.balancer_of_group(conn, row.tg_arn)
        if lb_arn is None:
            return True
        try:
            stats = BalancerRuntime(self.process(lb_arn).api).stats(topology.backend(row.tg_arn))
        except TrafficError:
            return False  # HAProxy is not answering (stopped, restarting): the deadline holds
        stat = stats.get(haproxy_config.server_name(row.address, row.port))
        key = (row.tg_arn, row.address, row.port)
        # Seen idle on consecutive sweeps: a request picked just before the drain has
        # had a sweep's time to show up in the server's session count.
        self._idle[key] = self._idle.get(key, 0) + 1 if stat is None or stat.sessions == 0 else 0
        return self._idle[key] >= IDLE_SWEEPS
