"""The gauges computed when Prometheus scrapes: two short queries, no per-request cost."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from shipyard.server.context import Services
from shipyard.store import schema

_d = schema.deployments.c
_i = schema.instances.c


def live_gauges(services: Services) -> Iterator[Metric]:
    now = services.clock()
    with services.db.tx() as conn:
        running = conn.execute(
            select(_d.application_name, _d.status, func.count())
            .where(_d.active.is_(True))
            .group_by(_d.application_name, _d.status)
        ).all()
        seen = conn.execute(select(_i.name, _i.last_seen).where(_i.registered.is_(True))).all()
    in_progress = GaugeMetricFamily(
        "shipyard_deployments_in_progress",
        "Deployments not yet in a terminal status.",
        labels=["application", "status"],
    )
    for app, status, count in running:
        in_progress.add_metric([app, status], count)
    yield in_progress
    agents = services.runner.agents
    timeout = services.config.agent_timeout
    states = {"polling": 0, "seen": 0, "silent": 0}
    since = GaugeMetricFamily(
        "shipyard_agent_last_seen_seconds",
        "Seconds since each registered instance's agent last polled.",
        labels=["host"],  # "instance" is the scrape target's own label
    )
    for name, last_seen in seen:
        if agents.is_polling(name):
            states["polling"] += 1
        elif last_seen is None or now - last_seen > timeout:
            states["silent"] += 1
        else:
            states["seen"] += 1
        if last_seen is not None:
            since.add_metric([name], max(0.0, now - last_seen))
    by_state = GaugeMetricFamily(
        "shipyard_agents",
        "Registered instances by agent state: polling now, seen within agent_timeout, silent.",
        labels=["state"],
    )
    for state, count in states.items():
        by_state.add_metric([state], count)
    yield by_state
    yield since
    yield GaugeMetricFamily(
        "shipyard_open_long_polls",
        "PollHostCommand requests held open now.",
        value=agents.open_polls(),
    )
