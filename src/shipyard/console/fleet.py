"""The fleet report: every instance, its tags and agent, the revision it runs per group
and since when, and each group's history; filtered by tag, group and agent status."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from shipyard.console.views import revision_label
from shipyard.server.context import Services
from shipyard.store import console_reads, groups, instances

GROUP_HISTORY_ROWS = 10
STATUSES = ("polling", "seen", "silent", "never seen", "deregistered")


@dataclass(frozen=True)
class Filters:
    tag: str = ""  # KEY or KEY=VALUE
    group: str = ""  # APPLICATION/GROUP
    status: str = ""  # one of STATUSES

    def admits(self, host: dict[str, Any], in_group: set[str] | None) -> bool:
        if self.tag:
            key, sep, value = self.tag.partition("=")
            if key not in host["tags"] or (sep and host["tags"][key] != value):
                return False
        if in_group is not None and host["name"] not in in_group:
            return False
        return not self.status or host["status"] == self.status


def _status(services: Services, host: dict[str, Any], now: float) -> str:
    if not host["registered"]:
        return "deregistered"
    if services.runner.agents.is_polling(host["name"]):
        return "polling"
    if host["lastSeen"] is None:
        return "never seen"
    return "seen" if now - host["lastSeen"] <= services.config.agent_timeout else "silent"


def report(services: Services, filters: Filters) -> dict[str, Any]:
    now = services.clock()
    with services.db.tx() as conn:
        hosts = console_reads.hosts(conn)
        history = console_reads.deployments_newest_first(conn)
        succeeded = console_reads.succeeded_hosts(conn)
        group_names = [
            f"{g['applicationName']}/{g['deploymentGroupName']}"
            for g in groups.all_deployment_groups(conn)
        ]
        in_group = None
        if filters.group:
            app, _, name = filters.group.partition("/")
            doc = groups.get_deployment_group(conn, app, name)
            in_group = set(instances.instances_for_group(conn, doc)) if doc else set()
    running: dict[str, dict[str, dict[str, Any]]] = {}  # host -> group -> what and since
    per_group: dict[str, list[dict[str, Any]]] = {}
    for row in history:  # newest first: the first success per host and group is current
        group = f"{row['application']}/{row['group']}"
        label = revision_label(row["revision"])
        for name in succeeded.get(row["id"], []):
            running.setdefault(name, {}).setdefault(
                group, {"revision": label, "since": row["completeTime"], "deployment": row["id"]}
            )
        rows = per_group.setdefault(group, [])
        if len(rows) < GROUP_HISTORY_ROWS:
            rows.append({**row, "revisionLabel": label, "hosts": succeeded.get(row["id"], [])})
    shown = []
    for host in hosts:
        host["status"] = _status(services, host, now)
        host["groups"] = running.get(host["name"], {})
        host["lastSeenAgo"] = None if host["lastSeen"] is None else now - host["lastSeen"]
        if filters.admits(host, in_group):
            shown.append(host)
    return {
        "hosts": shown,
        "total": len(hosts),
        "groups": sorted(group_names),
        "history": sorted(per_group.items()),
        "tags": sorted({f"{k}={v}" for h in hosts for k, v in h["tags"].items()}),
    }


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")


def as_csv(hosts: list[dict[str, Any]]) -> str:
    """One line per host and group it runs a revision for (one line for a host with none)."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = [
        *("instance", "agent_status", "agent_version", "last_seen", "tags"),
        *("group", "revision", "since"),
    ]
    writer.writerow(columns)
    for host in hosts:
        tags = ";".join(f"{k}={v}" for k, v in host["tags"].items())
        version = host["agentVersion"]
        base = [host["name"], host["status"], version, _iso(host["lastSeen"]), tags]
        runs = host["groups"].items() or [("", {"revision": "", "since": None})]
        for group, what in runs:
            row = [*base, group, what["revision"], _iso(what["since"])]
            writer.writerow([_inert(cell) for cell in row])
    return out.getvalue()


def _inert(cell: str) -> str:
    """A cell a spreadsheet would read as a formula is quoted (CSV injection)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell
