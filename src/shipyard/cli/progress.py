"""What the CLI shows about a deployment, as pure functions from API data to lines.

Inputs are shaped like the API's answers: ``deployment`` like GetDeployment's
``deploymentInfo``, ``targets`` like BatchGetDeploymentTargets' ``deploymentTargets``.
Timestamps may be epoch seconds or the ``datetime`` objects boto3 parses them into.
``now`` is passed in (epoch seconds) wherever an elapsed time is shown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})
TARGET_END_STATUSES = frozenset({"Succeeded", "Failed", "Skipped"})

# Column headings for the live table: full event names would make it too wide to read.
EVENT_LABELS = {
    "BeforeBlockTraffic": "BfBlock",
    "BlockTraffic": "Block",
    "AfterBlockTraffic": "AfBlock",
    "ApplicationStop": "AppStop",
    "DownloadBundle": "Download",
    "BeforeInstall": "BfInstall",
    "Install": "Install",
    "AfterInstall": "AfInstall",
    "ApplicationStart": "AppStart",
    "ValidateService": "Validate",
    "BeforeAllowTraffic": "BfAllow",
    "AllowTraffic": "Allow",
    "AfterAllowTraffic": "AfAllow",
}
SYMBOLS = {
    "Pending": "·",
    "InProgress": "▸",
    "Succeeded": "✓",
    "Failed": "✗",
    "Skipped": "-",
    "Unknown": "?",
}
LEGEND = "✓ succeeded  ✗ failed  ▸ running  · pending  - skipped"
OVERVIEW_ORDER = ("Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready")
LOG_TAIL_LINES = 5

Snapshot = dict[tuple[str, str], str]  # (target, event) -> status; ("", "") is the deployment


@dataclass(frozen=True)
class Target:
    """One deployment target, whatever its platform."""

    target_id: str
    status: str
    events: tuple[Mapping[str, Any], ...]
    # A traffic-shift target's split ("30% on v2"); "" for hosts.
    traffic: str = ""


# The snapshot key of a target's traffic split (not an event name).
TRAFFIC = "~traffic"


def _traffic(detail: Mapping[str, Any]) -> str:
    info = detail.get("lambdaFunctionInfo")
    if isinstance(info, Mapping):
        weight = float(info.get("targetVersionWeight") or 0)
        return f"{weight:g}% on v{info.get('targetVersion', '?')}"
    return _task_set_split(detail.get("taskSetsInfo"))


def _task_set_split(task_sets: Any) -> str:
    """An ECS service's split between its task sets ("90% blue / 10% green")."""
    if not isinstance(task_sets, list) or len(task_sets) < 2:
        return ""
    shares = sorted(
        (str(t.get("taskSetLabel", "?")).lower(), float(t.get("trafficWeight") or 0))
        for t in task_sets
        if isinstance(t, Mapping)
    )
    return " / ".join(f"{weight:g}% {label}" for label, weight in shares)


def target_of(raw: Mapping[str, Any]) -> Target:
    """Pick the platform-specific part (instanceTarget, lambdaTarget, ...) of a target."""
    detail: Mapping[str, Any] = raw
    for key in ("instanceTarget", "lambdaTarget", "ecsTarget", "cloudFormationTarget"):
        if key in raw:
            detail = raw[key]
            break
    return Target(
        target_id=str(detail.get("targetId", "?")),
        status=str(detail.get("status", "Unknown")),
        events=tuple(detail.get("lifecycleEvents") or ()),
        traffic=_traffic(detail),
    )


def seconds(value: Any) -> float | None:
    """Epoch seconds from a wire number or a boto3 datetime; None when absent."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value)


def format_duration(value: float | None) -> str:
    if value is None:
        return "-"
    value = max(value, 0.0)
    if value < 10:
        return f"{value:.1f}s"
    if value < 60:
        return f"{value:.0f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def format_time(value: Any) -> str:
    stamp = seconds(value)
    if stamp is None:
        return "-"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_revision(revision: Mapping[str, Any] | None) -> str:
    if not revision:
        return "-"
    if "s3Location" in revision:
        s3 = revision["s3Location"]
        text = f"s3://{s3.get('bucket', '?')}/{s3.get('key', '?')} ({s3.get('bundleType', '?')})"
        return text + (f" version {s3['version']}" if s3.get("version") else "")
    if "gitHubLocation" in revision:
        gh = revision["gitHubLocation"]
        return f"github:{gh.get('repository', '?')}@{gh.get('commitId', '?')}"
    return str(revision.get("revisionType", "-"))


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, without trailing blanks."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def event_names(targets: Iterable[Target]) -> list[str]:
    """Every lifecycle event seen, in the order the targets run them."""
    names: list[str] = []
    for target in targets:
        for event in target.events:
            name = str(event.get("lifecycleEventName", "?"))
            if name not in names:
                names.append(name)
    return names


def event_duration(event: Mapping[str, Any], now: float | None = None) -> float | None:
    start = seconds(event.get("startTime"))
    end = seconds(event.get("endTime"))
    if start is None:
        return None
    if end is None:
        return None if now is None else now - start
    return end - start


def target_duration(target: Target, now: float | None = None) -> float | None:
    """How long a host has run: to its last event's end, or to ``now`` while it runs."""
    starts = [s for e in target.events if (s := seconds(e.get("startTime"))) is not None]
    ends = [s for e in target.events if (s := seconds(e.get("endTime"))) is not None]
    if not starts:
        return None
    if now is not None and target.status == "InProgress":
        return now - min(starts)
    return max(ends) - min(starts) if ends else None


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting web-2 before web-10: digit runs compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(name))


_DIGITS = re.compile(r"(\d+)")


def in_natural_order(targets: Iterable[Target]) -> list[Target]:
    return sorted(targets, key=lambda t: natural_key(t.target_id))


def deployment_duration(deployment: Mapping[str, Any], now: float) -> float | None:
    start = seconds(deployment.get("startTime")) or seconds(deployment.get("createTime"))
    if start is None:
        return None
    end = seconds(deployment.get("completeTime"))
    return (end if end is not None else now) - start


def _failed_event(target: Target) -> Mapping[str, Any] | None:
    return next((e for e in target.events if e.get("status") == "Failed"), None)


def _running_event(target: Target) -> Mapping[str, Any] | None:
    return next((e for e in target.events if e.get("status") == "InProgress"), None)


def diagnostics_line(event: Mapping[str, Any]) -> str:
    """``ErrorCode: first line of the message`` for a failed lifecycle event."""
    diagnostics = event.get("diagnostics") or {}
    message = str(diagnostics.get("message") or "").strip().splitlines()
    code = diagnostics.get("errorCode") or "Failed"
    return f"{code}: {message[0]}" if message else str(code)


def overview_line(deployment: Mapping[str, Any]) -> str:
    overview = deployment.get("deploymentOverview") or {}
    parts = [f"{name} {overview[name]}" for name in OVERVIEW_ORDER if overview.get(name)]
    return ", ".join(parts) if parts else "no targets yet"


def headline(deployment: Mapping[str, Any], now: float) -> str:
    where = f"{deployment.get('applicationName', '?')}/{deployment.get('deploymentGroupName', '?')}"
    return (
        f"{deployment.get('deploymentId', '?')}  {deployment.get('status', '?')}  {where}  "
        f"{format_duration(deployment_duration(deployment, now))}  ({overview_line(deployment)})"
    )


def _cell(event: Mapping[str, Any] | None, now: float) -> str:
    if event is None:
        return SYMBOLS["Pending"]
    status = str(event.get("status", "Unknown"))
    symbol = SYMBOLS.get(status, "?")
    if status in ("Pending", "Skipped", "Unknown"):
        return symbol
    duration = event_duration(event, now if status == "InProgress" else None)
    return f"{symbol} {format_duration(duration)}" if duration is not None else symbol


@dataclass(frozen=True)
class Column:
    """One column of the live table: its heading and how a target fills it at ``now``.

    The first columns (target, status, time, current event) say what matters at a glance
    and are kept when the terminal is narrow; the event grid after them may be cut.
    """

    heading: str
    cell: Callable[[Target, float], str]


def _event_cell(name: str) -> Callable[[Target, float], str]:
    def cell(target: Target, now: float) -> str:
        found = next((e for e in target.events if e.get("lifecycleEventName") == name), None)
        return _cell(found, now)

    return cell


def _current_event(target: Target, now: float) -> str:
    current = _failed_event(target) or _running_event(target)
    return str(current.get("lifecycleEventName", "")) if current else ""


def _target_name(target: Target, now: float) -> str:
    """The target, with its traffic split when it shifts by weight ("30% on v2")."""
    return f"{target.target_id} ({target.traffic})" if target.traffic else target.target_id


def live_columns(targets: Sequence[Target]) -> list[Column]:
    """The live table's columns for these targets (add platform columns here)."""
    return [
        Column("TARGET", _target_name),
        Column("STATUS", lambda t, now: t.status),
        Column("TIME", lambda t, now: format_duration(target_duration(t, now))),
        Column("EVENT", _current_event),
        *(Column(EVENT_LABELS.get(n, n[:10]), _event_cell(n)) for n in event_names(targets)),
    ]


def live_rows(targets: Sequence[Target], now: float) -> list[list[str]]:
    """The live table as cells, heading row first, targets in natural order."""
    columns = live_columns(targets)
    rows = [[column.heading for column in columns]]
    rows += [[column.cell(t, now) for column in columns] for t in in_natural_order(targets)]
    return rows


def wait_reasons(deployment: Mapping[str, Any]) -> list[str]:
    """Why a deployment that has not ended is not moving, in the server's words."""
    if deployment.get("status") in TERMINAL_STATUSES:
        return []
    reasons = [str(m) for m in deployment.get("deploymentStatusMessages") or () if m]
    if deployment.get("status") == "Ready":
        reasons.append(
            "Ready: the replacement hosts wait for traffic to be rerouted (shipyard continue)"
        )
    if deployment.get("instanceTerminationWaitTimeStarted"):
        reasons.append(
            "Waiting to terminate the original hosts (termination wait time; "
            "shipyard continue --wait-type termination ends it)"
        )
    return reasons


def live_table(
    deployment: Mapping[str, Any], raw_targets: Sequence[Mapping[str, Any]], now: float
) -> list[str]:
    """The redrawn view: a headline, then one row per target and one column per event."""
    targets = [target_of(t) for t in raw_targets]
    lines = [headline(deployment, now), *wait_reasons(deployment)]
    if targets:
        lines += [*table(live_rows(targets, now)), LEGEND]
    return lines


def snapshot(deployment: Mapping[str, Any], raw_targets: Sequence[Mapping[str, Any]]) -> Snapshot:
    state: Snapshot = {("", ""): str(deployment.get("status", "?"))}
    for target in map(target_of, raw_targets):
        state[(target.target_id, "")] = target.status
        if target.traffic:
            state[(target.target_id, TRAFFIC)] = target.traffic
        for event in target.events:
            state[(target.target_id, str(event.get("lifecycleEventName")))] = str(
                event.get("status", "Unknown")
            )
    return state


def _event_change(stamp: str, target_id: str, event: Mapping[str, Any]) -> str:
    status = event.get("status", "Unknown")
    line = f"{stamp} {target_id}  {event.get('lifecycleEventName')}  {status}"
    duration = event_duration(event)
    if status != "InProgress" and duration is not None:
        line += f" ({format_duration(duration)})"
    if status == "Failed":
        line += f": {diagnostics_line(event)}"
    return line


def change_lines(
    previous: Snapshot,
    deployment: Mapping[str, Any],
    raw_targets: Sequence[Mapping[str, Any]],
    now: float,
) -> tuple[list[str], Snapshot]:
    """Lines for what changed since ``previous`` (for logs and pipes), and the new snapshot.

    Pending states are not announced: everything starts pending, so they are noise.
    A target's start is told before its events, its end after them.
    """
    current = snapshot(deployment, raw_targets)
    created = seconds(deployment.get("createTime"))
    stamp = f"[{format_duration(now - created if created is not None else None):>6}]"

    def changed(key: tuple[str, str]) -> bool:
        return current[key] != "Pending" and previous.get(key) != current[key]

    lines: list[str] = []
    for target in map(target_of, raw_targets):
        own = (target.target_id, "")
        own_line = [f"{stamp} {target.target_id}  {target.status}"] if changed(own) else []
        ended = target.status in TARGET_END_STATUSES
        lines += [] if ended else own_line
        for event in target.events:
            if changed((target.target_id, str(event.get("lifecycleEventName")))):
                lines.append(_event_change(stamp, target.target_id, event))
        if target.traffic and changed((target.target_id, TRAFFIC)):
            lines.append(f"{stamp} {target.target_id}  traffic {target.traffic}")
        lines += own_line if ended else []
    if changed(("", "")):
        status = current[("", "")]
        line = f"{stamp} {deployment.get('deploymentId', '?')}  {status}"
        lines.insert(len(lines) if status in TERMINAL_STATUSES else 0, line)
    return lines, current


def target_rows(raw_targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per-host table: status, events done, duration, and the failing or running event."""
    rows = [["HOST", "STATUS", "EVENTS", "DURATION", "EVENT", "DETAIL"]]
    for target in in_natural_order(map(target_of, raw_targets)):
        done = sum(1 for e in target.events if e.get("status") == "Succeeded")
        failed = _failed_event(target)
        current = failed or _running_event(target)
        rows.append(
            [
                f"{target.target_id} ({target.traffic})" if target.traffic else target.target_id,
                target.status,
                f"{done}/{len(target.events)}",
                format_duration(target_duration(target)),
                str(current.get("lifecycleEventName", "")) if current else "",
                diagnostics_line(failed) if failed else "",
            ]
        )
    return table(rows)


def failure_details(deployment_id: str, raw_targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """For each failed host: the end of its script output and how to see all of it."""
    lines: list[str] = []
    for target in map(target_of, raw_targets):
        failed = _failed_event(target)
        if failed is None:
            continue
        name = failed.get("lifecycleEventName", "?")
        lines.append("")
        lines.append(f"{target.target_id} failed in {name}: {diagnostics_line(failed)}")
        tail = str((failed.get("diagnostics") or {}).get("logTail") or "").rstrip()
        if tail:  # events without scripts (DownloadBundle, Install) have no output to show
            lines += ["    " + line for line in tail.splitlines()[-LOG_TAIL_LINES:]]
            lines.append(
                f"    full output: shipyard logs {deployment_id} --target {target.target_id} "
                f"--event {name}"
            )
    return lines


def outcome_line(deployment: Mapping[str, Any], now: float) -> str:
    status = deployment.get("status", "?")
    line = (
        f"Deployment {deployment.get('deploymentId', '?')} {status} "
        f"after {format_duration(deployment_duration(deployment, now))}"
    )
    error = deployment.get("errorInformation") or {}
    if status != "Succeeded" and (error.get("code") or error.get("message")):
        line += f": {error.get('code', '')}: {error.get('message', '')}".rstrip(": ")
    return line


def final_report(
    deployment: Mapping[str, Any], raw_targets: Sequence[Mapping[str, Any]], now: float
) -> list[str]:
    """What ``shipyard deploy`` prints once the deployment has finished."""
    deployment_id = str(deployment.get("deploymentId", "?"))
    lines = ["", outcome_line(deployment, now)]
    if raw_targets:
        lines += ["", *target_rows(raw_targets)]
    return lines + failure_details(deployment_id, raw_targets)


def status_report(
    deployment: Mapping[str, Any], raw_targets: Sequence[Mapping[str, Any]], now: float
) -> list[str]:
    """What ``shipyard status`` prints: a summary, then the per-host table."""
    error = deployment.get("errorInformation") or {}
    status = str(deployment.get("status", "?"))
    if error.get("code"):
        status += f" ({error['code']}: {error.get('message', '')})"
    summary = [
        ["Deployment", str(deployment.get("deploymentId", "?"))],
        ["Application", str(deployment.get("applicationName", "-"))],
        ["Group", str(deployment.get("deploymentGroupName", "-"))],
        ["Config", str(deployment.get("deploymentConfigName", "-"))],
        ["Status", status],
        *(["Waiting", reason] for reason in wait_reasons(deployment)),
        ["Revision", format_revision(deployment.get("revision"))],
        ["Created", format_time(deployment.get("createTime"))],
        ["Duration", format_duration(deployment_duration(deployment, now))],
        ["Targets", overview_line(deployment)],
    ]
    if deployment.get("description"):
        summary.append(["Description", str(deployment["description"])])
    rollback = deployment.get("rollbackInfo") or {}
    if rollback.get("rollbackDeploymentId"):
        summary.append(["Rolled back by", str(rollback["rollbackDeploymentId"])])
    if rollback.get("rollbackTriggeringDeploymentId"):
        summary.append(["Rollback of", str(rollback["rollbackTriggeringDeploymentId"])])
    if rollback.get("rollbackMessage") and len(rollback) == 1:  # rolled back in place
        summary.append(["Rollback", str(rollback["rollbackMessage"])])
    lines = table(summary)
    if raw_targets:
        lines += ["", *target_rows(raw_targets)]
    return lines + failure_details(str(deployment.get("deploymentId", "?")), raw_targets)
