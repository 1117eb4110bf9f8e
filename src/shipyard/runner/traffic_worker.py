"""The Server platform's server-run steps: BlockTraffic, AllowTraffic and restore on
the load balancer, in worker threads, off the request path; each result goes back to the
engine as an input.

A host's dispatch count (its epoch) is kept so that a restore decided before a newer
event was dispatched to the host leaves the host's traffic alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from shipyard.config import ServerConfig
from shipyard.engine.messages import Acknowledged, Completed, Input
from shipyard.engine.state import StoredDeployment
from shipyard.runner import traffic_steps
from shipyard.runner.server_steps import NoShifts
from shipyard.traffic import TrafficRouter, backends_for

log = logging.getLogger("shipyard.runner")

Apply = Callable[[str, Input], object]


class TrafficWorker(NoShifts):
    """``ServerSteps`` of the Server platform."""

    def __init__(self, config: ServerConfig, router: TrafficRouter | None, apply: Apply) -> None:
        super().__init__(apply)
        self.config = config
        self.router = router
        # (deployment, target, event) of the traffic jobs running in worker threads
        self._running: set[tuple[str, str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._host_epoch: dict[str, int] = {}

    def dispatched(self, target_id: str) -> None:
        """Every event dispatched to a host bumps its epoch: a traffic restore made
        before it must then leave the host's traffic alone."""
        self._host_epoch[target_id] = self._host_epoch.get(target_id, 0) + 1

    def run(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        self.start(self.job(stored, target_id, event))

    def retire(self, stored: StoredDeployment, target_id: str) -> None:
        """Never asked: a server's original hosts are retired by the runner itself."""

    def restore(self, stored: StoredDeployment, target_id: str) -> None:
        self.start(self.job(stored, target_id, traffic_steps.RESTORE))

    def job(self, stored: StoredDeployment, target_id: str, event: str) -> traffic_steps.TrafficJob:
        backends = tuple(backends_for(stored.info.get("loadBalancerInfo")))
        epoch = self._host_epoch.get(target_id, 0)
        return traffic_steps.TrafficJob(
            stored.state.deployment_id, target_id, event, backends, epoch
        )

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a reference, so the task is not collected early
        task.add_done_callback(self._tasks.discard)

    def start(self, job: traffic_steps.TrafficJob) -> None:
        key = (job.deployment_id, job.target_id, job.event)
        if key in self._running:
            return
        self._running.add(key)
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (tools, tests)
            self._finish(job, self._run(job))
            return
        self.in_background(self._task(job))

    def resume(self, stored: StoredDeployment) -> None:
        """After a restart: server events in flight that no worker is running."""
        state = stored.state
        for target in state.targets.values():
            current = target.current()
            if target.in_flight and current is not None and current.name in state.server_events:
                self.start(self.job(stored, target.target_id, current.name))

    async def _task(self, job: traffic_steps.TrafficJob) -> None:
        try:
            if job.event != traffic_steps.RESTORE:
                self._apply(job.deployment_id, Acknowledged(job.target_id, job.event))
            result = await asyncio.to_thread(self._run, job)
            self._finish(job, result)
        except Exception:
            self._running.discard((job.deployment_id, job.target_id, job.event))
            log.exception("traffic job %s failed", job)

    def _run(self, job: traffic_steps.TrafficJob) -> tuple[bool, dict[str, str]]:
        config = self.config

        def still_ours() -> bool:
            return self._host_epoch.get(job.target_id, 0) == job.epoch

        return traffic_steps.run(
            self.router, job, config.drain_seconds, config.health_seconds, still_ours
        )

    def _finish(self, job: traffic_steps.TrafficJob, result: tuple[bool, dict[str, str]]) -> None:
        self._running.discard((job.deployment_id, job.target_id, job.event))
        succeeded, diagnostics = result
        if job.event == traffic_steps.RESTORE:
            log.info("restore traffic for %s: %s", job.target_id, diagnostics["message"])
            return
        done = Completed(job.target_id, job.event, succeeded, diagnostics)
        self._apply(job.deployment_id, done)
