"""The fleet view: ``shipyard instance list`` (agent state and deployed revisions per
group), ``shipyard history APP [GROUP]``, and the never-connected warning of ``deploy``.

Agent state comes from the ``ShipyardListInstanceStatus`` extension: the CodeDeploy
API has no notion of an agent's last contact.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.cli import output, progress
from shipyard.cli.client import EXIT_OK, CliError, ShipyardClient

STATUS_OPERATION = "ShipyardListInstanceStatus"
HISTORY_LIMIT = 20  # deployments shown by ``history`` unless --limit says otherwise


def instance_status(client: ShipyardClient) -> list[dict[str, Any]]:
    answer = client.call_extension(STATUS_OPERATION, {})
    return list(answer.get("instances", []))


def _agent_text(entry: Mapping[str, Any], now: float) -> str:
    state = str(entry.get("agentState", "?"))
    seen = progress.seconds(entry.get("lastSeen"))
    if seen is None:
        return state
    return f"{state} ({progress.format_duration(now - seen)} ago)"


def _revision_lines(entry: Mapping[str, Any], now: float) -> list[str]:
    return [
        f"{r.get('applicationName')}/{r.get('deploymentGroupName')}: "
        f"{progress.format_revision(r.get('revision'))} "
        f"since {progress.format_duration(now - (progress.seconds(r.get('since')) or now))} ago"
        for r in entry.get("revisions", [])
    ]


def instance_rows(fleet: Sequence[Mapping[str, Any]], now: float) -> list[str]:
    rows = [["NAME", "AGENT", "VERSION", "TAGS", "REVISION (per group)"]]
    for entry in sorted(fleet, key=lambda e: progress.natural_key(str(e.get("instanceName")))):
        revisions = _revision_lines(entry, now) or ["-"]
        tags = " ".join(f"{k}={v}" for k, v in sorted((entry.get("tags") or {}).items())) or "-"
        name = str(entry.get("instanceName"))
        version = str(entry.get("agentVersion") or "-")
        rows.append([name, _agent_text(entry, now), version, tags, revisions[0]])
        rows += [["", "", "", "", more] for more in revisions[1:]]
    return progress.table(rows)


def cmd_instance_list(args: argparse.Namespace, client: ShipyardClient) -> int:
    fleet = instance_status(client)
    if args.tag:
        names = set(_names_with_tags(client, args.tag))
        fleet = [e for e in fleet if e.get("instanceName") in names]
    if output.wants_json(args):
        output.emit_json(fleet)
    elif fleet:
        for line in instance_rows(fleet, time.time()):
            print(line)
    else:
        print("no registered instances (shipyard instance register NAME ...)", file=sys.stderr)
    return EXIT_OK


def _names_with_tags(client: ShipyardClient, pairs: Sequence[str]) -> list[str]:
    filters = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise CliError(f"--tag wants KEY=VALUE, got {pair!r}", 2)
        filters.append({"Key": key, "Value": value, "Type": "KEY_AND_VALUE"})
    query: dict[str, Any] = {"tagFilters": filters, "registrationStatus": "Registered"}
    names: list[str] = []
    while True:
        page = client.api("ListOnPremisesInstances", **query)
        names += page.get("instanceNames", [])
        if not page.get("nextToken"):
            return names
        query["nextToken"] = page["nextToken"]


def warn_never_connected(client: ShipyardClient, deployment_id: str) -> list[str]:
    """Warn at once (on stderr) about targets whose agent has never polled the server:
    they cannot start until it does, and fail after the agent timeout."""
    targets = {progress.target_of(t).target_id for t in client.deployment_targets(deployment_id)}
    fleet = instance_status(client)
    never = sorted(
        (
            str(e["instanceName"])
            for e in fleet
            if e.get("instanceName") in targets and e.get("agentState") == "never-connected"
        ),
        key=progress.natural_key,
    )
    if never:
        print(
            f"shipyard: warning: the agent on {', '.join(never)} has never connected to the "
            "server; those hosts wait for it (start it: shipyard agent --config FILE)",
            file=sys.stderr,
        )
    return never


# --- history ---------------------------------------------------------------------------


def _group_names(client: ShipyardClient, app: str) -> list[str]:
    return list(client.api("ListDeploymentGroups", applicationName=app).get("deploymentGroups", []))


def cmd_history(args: argparse.Namespace, client: ShipyardClient) -> int:
    groups = [args.group] if args.group else _group_names(client, args.application)
    ids: list[str] = []
    for group in groups:
        query: dict[str, Any] = {"applicationName": args.application, "deploymentGroupName": group}
        while len(ids) < args.limit * len(groups):
            page = client.api("ListDeployments", **query)
            ids += page.get("deployments", [])
            if not page.get("nextToken"):
                break
            query["nextToken"] = page["nextToken"]
    infos: list[dict[str, Any]] = []
    for start in range(0, len(ids), 25):
        chunk = ids[start : start + 25]
        infos += client.api("BatchGetDeployments", deploymentIds=chunk).get("deploymentsInfo", [])
    infos.sort(key=lambda i: progress.seconds(i.get("createTime")) or 0.0, reverse=True)
    infos = infos[: args.limit]
    if output.wants_json(args):
        output.emit_json(infos)
        return EXIT_OK
    if not infos:
        print(f"no deployments of {args.application}", file=sys.stderr)
        return EXIT_OK
    rows = [["DEPLOYMENT", "GROUP", "STATUS", "CREATED", "DURATION", "REVISION"]]
    now = time.time()
    for info in infos:
        status = str(info.get("status", "?"))
        rollback = info.get("rollbackInfo") or {}
        if rollback.get("rollbackTriggeringDeploymentId"):
            status += f" (rollback of {rollback['rollbackTriggeringDeploymentId']})"
        rows.append(
            [
                str(info.get("deploymentId")),
                str(info.get("deploymentGroupName")),
                status,
                progress.format_time(info.get("createTime")),
                progress.format_duration(progress.deployment_duration(info, now)),
                progress.format_revision(info.get("revision")),
            ]
        )
    for line in progress.table(rows):
        print(line)
    return EXIT_OK
