"""What a runner step tells the metrics: read from the step at once, recorded after commit.

The values are taken while the step's state is at hand (later steps change it); the
recording runs only once the transaction has committed, so a step that rolled back is
never counted.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from shipyard.engine import messages as m
from shipyard.engine.state import StoredDeployment
from shipyard.metrics import Metrics
from shipyard.model import LifecycleEventStatus

_RESULTS = (LifecycleEventStatus.SUCCEEDED, LifecycleEventStatus.FAILED)


def recording(
    metrics: Metrics, stored: StoredDeployment, event: m.Input, outcome: m.Outcome, now: float
) -> Callable[[], None]:
    state = stored.state
    platform = str(stored.info.get("computePlatform") or "Server")
    app = stored.application_name
    calls: list[Callable[[], None]] = []
    deployment_id = state.deployment_id
    if isinstance(event, m.Start):
        calls.append(partial(metrics.deployment_started, platform, app))
    if isinstance(event, m.TrafficShifted) and event.succeeded:
        shift = partial(metrics.traffic_shifted, deployment_id, event.target_id)
        calls.append(partial(shift, event.target_weight))
    for target_id in outcome.changed_targets:
        target = state.targets.get(target_id)
        for ev in target.events if target is not None else ():
            if ev.end_time == now and ev.start_time is not None and ev.status in _RESULTS:
                seconds = now - ev.start_time
                calls.append(partial(metrics.event_finished, ev.name, ev.status.value, seconds))
    for action in outcome.actions:
        if isinstance(action, m.Finished):
            seconds = now - state.create_time
            finished = partial(metrics.deployment_finished, platform, action.status.value, app)
            calls.append(partial(finished, seconds, deployment_id))

    def record() -> None:
        for call in calls:
            call()

    return record
