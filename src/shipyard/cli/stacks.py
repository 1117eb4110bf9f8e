"""``shipyard stack deploy | list | describe | events | delete``.

    shipyard stack deploy web --template stack.yml --parameter Stage=prod
    shipyard stack list
    shipyard stack describe web
    shipyard stack events web
    shipyard stack delete web

``deploy`` packages local code (stack_package.py), makes a change set, shows it, runs
it and follows it: the stack's events as they happen and, when a resource's update is a
CodeDeploy deployment, that deployment's traffic weights and hooks. It exits 0 when the
stack ends CREATE_COMPLETE or UPDATE_COMPLETE (or nothing changed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from shipyard.cli import following, output, progress
from shipyard.cli.client import EXIT_USAGE, CliError, ShipyardClient
from shipyard.cli.options import command
from shipyard.cli.stack_package import package
from shipyard.cli.subcommands import client_for

POLL_SECONDS = 0.5
SUCCEEDED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE")
_DEPLOYMENT = re.compile(r"CodeDeploy deployment (d-[A-Z0-9]+)")
NO_CHANGES = "didn't contain changes"


def add_stack_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    stack = command(
        subparsers,
        "stack",
        help="stacks: templates deployed as a whole (CloudFormation)",
        example="shipyard stack deploy web --template stack.yml",
    )
    actions = stack.add_subparsers(dest="action", metavar="ACTION", required=True)
    deploy = command(
        actions,
        "deploy",
        parents=[api],
        help="create or update a stack from a template and follow it",
        example="shipyard stack deploy web --template stack.yml --parameter Stage=prod",
    )
    deploy.add_argument("name", metavar="NAME", help="stack name, e.g. web")
    deploy.add_argument(
        "--template", required=True, type=Path, metavar="FILE", help="the template (YAML or JSON)"
    )
    deploy.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter's value (repeat); others keep their previous value",
    )
    deploy.set_defaults(run=cmd_stack_deploy)
    listing = command(
        actions, "list", parents=[api], help="list stacks", example="shipyard stack list"
    )
    listing.set_defaults(run=cmd_stack_list)
    for verb, text, run in (
        ("describe", "a stack's status, parameters, outputs and resources", cmd_stack_describe),
        ("events", "a stack's events, oldest first", cmd_stack_events),
        ("delete", "delete a stack and its resources, and follow it", cmd_stack_delete),
    ):
        sub = command(actions, verb, parents=[api], help=text, example=f"shipyard stack {verb} web")
        sub.add_argument("name", metavar="NAME", help="stack name, e.g. web")
        sub.set_defaults(run=run)


def _parameters(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"--parameter wants KEY=VALUE, got {pair!r}", EXIT_USAGE)
        found[key] = value
    return found


def _existing(client: ShipyardClient, name: str) -> dict[str, Any] | None:
    try:
        stacks = client.stacks_api("DescribeStacks", StackName=name)["Stacks"]
    except CliError as exc:
        if "does not exist" in exc.message:
            return None
        raise
    return stacks[0] if stacks and stacks[0]["StackStatus"] != "REVIEW_IN_PROGRESS" else None


def cmd_stack_deploy(args: argparse.Namespace) -> int:
    client = client_for(args)
    given = _parameters(args.parameter)
    body = package(client, args.template, args.name)
    stack = _existing(client, args.name)
    kind = "UPDATE" if stack else "CREATE"
    previous = {p["ParameterKey"] for p in (stack or {}).get("Parameters", [])}
    parameters: list[dict[str, Any]] = [
        {"ParameterKey": k, "ParameterValue": v} for k, v in given.items()
    ]
    parameters += [{"ParameterKey": k, "UsePreviousValue": True} for k in previous - set(given)]
    created = client.stacks_api(
        "CreateChangeSet",
        StackName=args.name,
        ChangeSetName=f"shipyard-{int(time.time() * 1000)}",
        ChangeSetType=kind,
        TemplateBody=body,
        Parameters=parameters,
    )
    change_set = client.stacks_api("DescribeChangeSet", ChangeSetName=created["Id"])
    if change_set["Status"] == "FAILED":
        if NO_CHANGES in change_set.get("StatusReason", ""):
            print(f"No changes to deploy: stack {args.name} is up to date")
            return 0
        raise CliError(f"change set failed: {change_set.get('StatusReason')}")
    _print_changes(change_set["Changes"])
    after = _last_event(client, args.name)
    client.stacks_api("ExecuteChangeSet", ChangeSetName=created["Id"])
    return _follow(client, args.name, after, sys.stdout)


def _print_changes(changes: list[dict[str, Any]]) -> None:
    rows = [["ACTION", "RESOURCE", "TYPE", "REPLACEMENT"]]
    for change in changes:
        found = change["ResourceChange"]
        rows.append(
            [
                found["Action"],
                found["LogicalResourceId"],
                found["ResourceType"],
                found.get("Replacement", "") or "",
            ]
        )
    for line in progress.table(rows):
        print(line)
    print()


def _last_event(client: ShipyardClient, name: str) -> str:
    try:
        found = client.stacks_api("DescribeStackEvents", StackName=name)["StackEvents"]
    except CliError:
        return ""
    return str(found[0]["EventId"]) if found else ""


def _new_events(client: ShipyardClient, stack_id: str, after: str) -> list[dict[str, Any]]:
    """Events since ``after`` (an event id), oldest first."""
    found = client.stacks_api("DescribeStackEvents", StackName=stack_id)["StackEvents"]
    fresh = []
    for event in found:
        if event["EventId"] == after:
            break
        fresh.append(event)
    return list(reversed(fresh))


def _event_line(event: dict[str, Any]) -> str:
    when = event["Timestamp"].astimezone(dt.UTC).strftime("%H:%M:%S")
    reason = event.get("ResourceStatusReason") or ""
    line = f"{when}  {event['LogicalResourceId']:<32} {event['ResourceStatus']:<28} {reason}"
    return line.rstrip()


def _follow(client: ShipyardClient, name: str, after: str, out: TextIO, stack_id: str = "") -> int:
    """Print the stack's events after ``after`` until its operation ends (``stack_id``:
    a deleted stack is found by its id only)."""
    if not stack_id:
        stack_id = client.stacks_api("DescribeStacks", StackName=name)["Stacks"][0]["StackId"]
    followed: set[str] = set()
    while True:
        for event in _new_events(client, stack_id, after):
            after = event["EventId"]
            out.write(_event_line(event) + "\n")
            out.flush()
            found = _DEPLOYMENT.search(event.get("ResourceStatusReason") or "")
            if found and found.group(1) not in followed:
                followed.add(found.group(1))
                _follow_deployment(client, found.group(1), out)
        stack = client.stacks_api("DescribeStacks", StackName=stack_id)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("IN_PROGRESS") and not _new_events(client, stack_id, after):
            out.write(f"\nstack {name}: {status}\n")
            return 0 if status in SUCCEEDED else 1
        time.sleep(POLL_SECONDS)


def _follow_deployment(client: ShipyardClient, deployment_id: str, out: TextIO) -> None:
    out.write(f"\nfollowing {deployment_id}\n")
    deployment, targets = following.follow(client, deployment_id, out)
    following.report(deployment, targets, out)
    out.write("\n")


def cmd_stack_list(args: argparse.Namespace) -> int:
    client = client_for(args)
    stacks = client.stacks_api("DescribeStacks")["Stacks"]
    if output.wants_json(args):
        output.emit_json(stacks)
        return 0
    rows = [["NAME", "STATUS", "UPDATED"]]
    rows += [
        [s["StackName"], s["StackStatus"], _when(s.get("LastUpdatedTime") or s["CreationTime"])]
        for s in stacks
    ]
    for line in progress.table(rows) if stacks else ["no stacks (shipyard stack deploy ...)"]:
        print(line)
    return 0


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_stack_describe(args: argparse.Namespace) -> int:
    client = client_for(args)
    stack = client.stacks_api("DescribeStacks", StackName=args.name)["Stacks"][0]
    resources = client.stacks_api("DescribeStackResources", StackName=args.name)["StackResources"]
    if output.wants_json(args):
        output.emit_json({"stack": stack, "resources": resources})
        return 0
    print(f"{stack['StackName']}: {stack['StackStatus']}")
    if stack.get("StackStatusReason"):
        print(f"  reason: {stack['StackStatusReason']}")
    for parameter in stack.get("Parameters", []):
        print(f"  parameter {parameter['ParameterKey']} = {parameter['ParameterValue']}")
    for found in stack.get("Outputs", []):
        print(f"  output {found['OutputKey']} = {found['OutputValue']}")
    rows = [["RESOURCE", "TYPE", "STATUS", "PHYSICAL ID"]]
    rows += [
        [
            r["LogicalResourceId"],
            r["ResourceType"],
            r["ResourceStatus"],
            r.get("PhysicalResourceId", ""),
        ]
        for r in resources
    ]
    print()
    for line in progress.table(rows):
        print(line)
    return 0


def cmd_stack_events(args: argparse.Namespace) -> int:
    client = client_for(args)
    found = client.stacks_api("DescribeStackEvents", StackName=args.name)["StackEvents"]
    if output.wants_json(args):
        output.emit_json(found)
        return 0
    for event in reversed(found):
        print(_event_line(event))
    return 0


def cmd_stack_delete(args: argparse.Namespace) -> int:
    client = client_for(args)
    if _existing(client, args.name) is None:
        raise CliError(f"no stack named {args.name}", 4)
    after = _last_event(client, args.name)
    stack_id = client.stacks_api("DescribeStacks", StackName=args.name)["Stacks"][0]["StackId"]
    client.stacks_api("DeleteStack", StackName=args.name)
    return _follow(client, args.name, after, sys.stdout, stack_id)
