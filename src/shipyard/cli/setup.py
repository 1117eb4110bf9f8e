"""Setting up without the AWS CLI: ``shipyard app create|list|delete`` and
``shipyard group create|update|show``.

A deployment group needs a service role in CodeDeploy; Shipyard assumes no role, so
``group create`` sends ``PLACEHOLDER_ROLE`` for it. Approval is not part of the
CodeDeploy model: ``--require-approval`` goes through ``ShipyardSetDeploymentGroupOptions``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shipyard.cli import output, progress
from shipyard.cli.client import EXIT_OK, EXIT_USAGE, CliError, ShipyardClient

PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/shipyard"
STYLES = {"in-place": "IN_PLACE", "blue-green": "BLUE_GREEN"}
ROLLBACK_EVENTS = {
    "failure": "DEPLOYMENT_FAILURE",
    "alarm": "DEPLOYMENT_STOP_ON_ALARM",
    "request": "DEPLOYMENT_STOP_ON_REQUEST",
}
TRIGGER_EVENTS = ("DeploymentStart", "DeploymentSuccess", "DeploymentFailure", "DeploymentStop")
OPTIONS_OPERATION = "ShipyardSetDeploymentGroupOptions"


# --- applications ----------------------------------------------------------------------


def cmd_app_create(args: argparse.Namespace, client: ShipyardClient) -> int:
    answer = client.api("CreateApplication", applicationName=args.name, computePlatform="Server")
    if output.wants_json(args):
        output.emit_json(answer)
    else:
        print(f"Created application {args.name} (next: shipyard group create {args.name} GROUP)")
    return EXIT_OK


def cmd_app_list(args: argparse.Namespace, client: ShipyardClient) -> int:
    names: list[str] = []
    query: dict[str, Any] = {}
    while True:
        page = client.api("ListApplications", **query)
        names += page.get("applications", [])
        if not page.get("nextToken"):
            break
        query["nextToken"] = page["nextToken"]
    if output.wants_json(args):
        output.emit_json(names)
    elif names:
        print("\n".join(sorted(names, key=progress.natural_key)))
    else:
        print("no applications (shipyard app create NAME)", file=sys.stderr)
    return EXIT_OK


def cmd_app_delete(args: argparse.Namespace, client: ShipyardClient) -> int:
    client.api("DeleteApplication", applicationName=args.name)
    print(f"Deleted application {args.name} and its deployment groups")
    return EXIT_OK


# --- deployment groups -----------------------------------------------------------------


def _tag_filters(pairs: list[str]) -> list[dict[str, str]]:
    filters = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key:
            raise CliError(f"--tag wants KEY=VALUE (or KEY alone), got {pair!r}", EXIT_USAGE)
        kind = "KEY_AND_VALUE" if sep and value else "KEY_ONLY"
        filters.append({"Key": key, "Type": kind, **({"Value": value} if value else {})})
    return filters


def _triggers(specs: list[str]) -> list[dict[str, Any]]:
    triggers = []
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise CliError(f"--trigger wants NAME=URL (an http(s) webhook), got {spec!r}", 2)
        triggers.append(
            {"triggerName": name, "triggerTargetArn": url, "triggerEvents": list(TRIGGER_EVENTS)}
        )
    return triggers


def group_request(args: argparse.Namespace) -> dict[str, Any]:
    """The CreateDeploymentGroup/UpdateDeploymentGroup members the flags given ask for."""
    request: dict[str, Any] = {}
    if args.tag:
        request["onPremisesInstanceTagFilters"] = _tag_filters(args.tag)
    if args.deployment_config:
        request["deploymentConfigName"] = args.deployment_config
    if args.style or args.load_balancer:
        style = {"deploymentType": STYLES[args.style or "in-place"]}
        if args.load_balancer:
            style["deploymentOption"] = "WITH_TRAFFIC_CONTROL"
            request["loadBalancerInfo"] = {"targetGroupInfoList": [{"name": args.load_balancer}]}
        request["deploymentStyle"] = style
    if args.auto_rollback is not None:
        events = [ROLLBACK_EVENTS[e] for e in args.auto_rollback]
        request["autoRollbackConfiguration"] = {"enabled": bool(events), "events": events}
    if args.alarm is not None:
        alarms = [{"name": name} for name in args.alarm if name]
        request["alarmConfiguration"] = {"enabled": bool(alarms), "alarms": alarms}
    if args.trigger is not None:
        request["triggerConfigurations"] = _triggers([t for t in args.trigger if t])
    return request


def _set_approval(client: ShipyardClient, args: argparse.Namespace) -> None:
    if args.require_approval is not None:
        client.call_extension(
            OPTIONS_OPERATION,
            {
                "applicationName": args.application,
                "deploymentGroupName": args.group,
                "requireApproval": args.require_approval,
            },
        )


def cmd_group_create(args: argparse.Namespace, client: ShipyardClient) -> int:
    request = group_request(args)
    if "onPremisesInstanceTagFilters" not in request:
        raise CliError("group create: give the hosts to target with --tag KEY=VALUE", EXIT_USAGE)
    client.api(
        "CreateDeploymentGroup",
        applicationName=args.application,
        deploymentGroupName=args.group,
        serviceRoleArn=PLACEHOLDER_ROLE,
        **request,
    )
    _set_approval(client, args)
    return _show(args, client, f"Created deployment group {args.application}/{args.group}")


def cmd_group_update(args: argparse.Namespace, client: ShipyardClient) -> int:
    request = group_request(args)
    if not request and args.require_approval is None:
        raise CliError("group update: nothing to change (see 'shipyard group update --help')", 2)
    if request:
        client.api(
            "UpdateDeploymentGroup",
            applicationName=args.application,
            currentDeploymentGroupName=args.group,
            **request,
        )
    _set_approval(client, args)
    return _show(args, client, f"Updated deployment group {args.application}/{args.group}")


def cmd_group_show(args: argparse.Namespace, client: ShipyardClient) -> int:
    return _show(args, client, None)


def _show(args: argparse.Namespace, client: ShipyardClient, done: str | None) -> int:
    if args.group is None:
        names = client.api("ListDeploymentGroups", applicationName=args.application)
        groups = names.get("deploymentGroups", [])
        if output.wants_json(args):
            output.emit_json(groups)
        else:
            print("\n".join(groups) if groups else f"no groups in {args.application}")
        return EXIT_OK
    # Raw JSON, not boto3: botocore drops the Shipyard members (shipyardOptions) it does
    # not know.
    info = client.call_extension(
        "GetDeploymentGroup",
        {"applicationName": args.application, "deploymentGroupName": args.group},
    )["deploymentGroupInfo"]
    if output.wants_json(args):
        output.emit_json(info)
        return EXIT_OK
    if done:
        print(done)
    for line in group_lines(info):
        print(line)
    return EXIT_OK


def _options(info: dict[str, Any]) -> dict[str, Any]:
    options = info.get("shipyardOptions")
    return options if isinstance(options, dict) else {}


def group_lines(info: dict[str, Any]) -> list[str]:
    tags = " ".join(
        f"{f.get('Key')}={f.get('Value', '*')}"
        for f in info.get("onPremisesInstanceTagFilters", [])
    )
    style = info.get("deploymentStyle") or {}
    rollback = info.get("autoRollbackConfiguration") or {}
    alarms = info.get("alarmConfiguration") or {}
    balancer = info.get("loadBalancerInfo") or {}
    balancers = [t.get("name") for t in balancer.get("targetGroupInfoList", [])]
    triggers = [
        f"{t.get('triggerName')}={t.get('triggerTargetArn')}"
        for t in info.get("triggerConfigurations", [])
    ]
    rows = [
        ["Group", f"{info.get('applicationName')}/{info.get('deploymentGroupName')}"],
        ["Targets", tags or "-"],
        ["Config", str(info.get("deploymentConfigName", "-"))],
        [
            "Style",
            f"{style.get('deploymentType', 'IN_PLACE')} "
            f"{style.get('deploymentOption', 'WITHOUT_TRAFFIC_CONTROL')}",
        ],
        ["Load balancer", ", ".join(str(b) for b in balancers) or "-"],
        [
            "Auto-rollback",
            ", ".join(rollback.get("events", [])) if rollback.get("enabled") else "off",
        ],
        [
            "Alarms",
            ", ".join(a.get("name", "?") for a in alarms.get("alarms", []))
            if alarms.get("enabled")
            else "off",
        ],
        ["Triggers", ", ".join(triggers) or "-"],
        ["Approval", "required" if _options(info).get("requireApproval") else "not required"],
    ]
    return progress.table(rows)
