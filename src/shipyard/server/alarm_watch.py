"""The alarm watcher: stops deployments whose alarms fire.

Every ``config.alarm_poll_seconds`` it looks at the active deployments that are
InProgress or Baking and whose ``alarmConfiguration`` (stored in the deployment's info
when it was created) is enabled. Each alarm named by any of them is read once per
round, in a thread (the checks do blocking HTTP), all of them concurrently. Then, for
each deployment, the first of its alarms that is in ALARM (or UNKNOWN, unless
``ignorePollAlarmFailure``) becomes an ``AlarmFired`` input to the runner; the engine
stops the deployment with ALARM_ACTIVE and rolls it back if so configured.

An alarm name with no definition reads UNKNOWN. The database is only touched on the
event loop (SQLite shares one connection), never from the check threads.
With several replicas each alarm is read by one of them, the holder of its lease
(``cluster.share``), which stops the deployments it fires for; ``last_readings`` then
holds this replica's alarms only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard import alarms
from shipyard.alarms import AlarmDefinition, AlarmReading
from shipyard.engine import messages
from shipyard.model import DeploymentStatus
from shipyard.server.context import Services
from shipyard.store import alarms as alarm_store
from shipyard.store import deployments

log = logging.getLogger("shipyard.alarms")

WATCHED_STATUSES = frozenset({DeploymentStatus.IN_PROGRESS, DeploymentStatus.BAKING})
READ_TIMEOUT_SECONDS = 5.0  # one alarm check; a slower one is UNKNOWN (or ALARM for http)
MIN_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Watched:
    """A deployment whose alarms are watched, with what its configuration says."""

    deployment_id: str
    alarm_names: tuple[str, ...]
    ignore_poll_failure: bool


def watched(
    deployment_id: str, status: DeploymentStatus, info: Mapping[str, Any]
) -> Watched | None:
    """Whether (and how) a deployment's alarms are watched now."""
    config = info.get("alarmConfiguration")
    if status not in WATCHED_STATUSES or not isinstance(config, Mapping):
        return None
    listed = config.get("alarms")
    names = tuple(
        alarm["name"]
        for alarm in (listed if isinstance(listed, list) else [])
        if isinstance(alarm, Mapping) and isinstance(alarm.get("name"), str) and alarm["name"]
    )
    if config.get("enabled") is not True or not names:
        return None
    return Watched(deployment_id, names, bool(config.get("ignorePollAlarmFailure")))


def verdict(
    deployment: Watched, readings: Mapping[str, AlarmReading]
) -> messages.AlarmFired | None:
    """The input that stops ``deployment``, if one of its alarms says it must stop."""
    for name in deployment.alarm_names:
        reading = readings.get(name) or AlarmReading("UNKNOWN", "no reading")
        if reading.state == "ALARM":
            return messages.AlarmFired(name, reading.message)
        if reading.state == "UNKNOWN" and not deployment.ignore_poll_failure:
            return messages.AlarmFired(name, f"its state cannot be read: {reading.message}")
    return None


def _only(deployment: Watched, alarm_names: set[str]) -> Watched | None:
    """``deployment`` watching only those of its alarms in ``alarm_names``."""
    kept = tuple(name for name in deployment.alarm_names if name in alarm_names)
    if not kept:
        return None
    return Watched(deployment.deployment_id, kept, deployment.ignore_poll_failure)


class AlarmWatcher:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._task: asyncio.Task[None] | None = None
        # The last round's readings by alarm name (the console shows the firing ones).
        self.last_readings: dict[str, AlarmReading] = {}

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch_forever())

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch_forever(self) -> None:
        interval = max(MIN_POLL_SECONDS, self.services.config.alarm_poll_seconds)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:
                log.exception("alarm check failed")

    async def check(self) -> None:
        """One round: read every watched alarm once and stop the deployments they fire for."""
        watching, definitions = self._load()
        every = {name for w in watching for name in w.alarm_names}
        mine = self.services.runner.share.mine("alarm", every)
        watching = [own for w in watching if (own := _only(w, mine)) is not None]
        if not watching:
            self.last_readings = {}
            return
        names = sorted({name for w in watching for name in w.alarm_names})
        readings = dict(
            zip(
                names,
                await asyncio.gather(*(self._read(definitions.get(n), n) for n in names)),
                strict=True,
            )
        )
        self.last_readings = readings
        for name, reading in readings.items():
            self.services.metrics.alarm_read(name, reading.state)
        for deployment in watching:
            fired = verdict(deployment, readings)
            if fired is not None:
                log.info(
                    "stopping %s: alarm %s: %s", deployment.deployment_id, fired.name, fired.message
                )
                self.services.runner.apply(deployment.deployment_id, fired)

    def _load(self) -> tuple[list[Watched], dict[str, AlarmDefinition]]:
        watching: list[Watched] = []
        with self.services.db.tx() as conn:
            active = deployments.active_ids(conn)
        for deployment_id in active:
            # The runner's cached state when current: a deployment to a large fleet is
            # not re-read host by host on every round.
            stored = self.services.runner.current(deployment_id)
            if stored is None:
                continue
            found = watched(deployment_id, stored.state.status, stored.info)
            if found is not None:
                watching.append(found)
        names = sorted({name for w in watching for name in w.alarm_names})
        with self.services.db.tx() as conn:
            definitions = alarm_store.get_alarms(conn, names)
        return watching, definitions

    async def _read(self, definition: AlarmDefinition | None, name: str) -> AlarmReading:
        if definition is None:
            return AlarmReading("UNKNOWN", f"no alarm named {name!r} is defined in Shipyard")
        return await asyncio.to_thread(alarms.evaluate, definition, READ_TIMEOUT_SECONDS)
