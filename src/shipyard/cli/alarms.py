"""``shipyard alarm put | list | delete``: the alarms deployment groups can name.

    shipyard alarm put errors --prometheus http://prom:9090 --query 'app_errors' --bake 60
    shipyard alarm put health --http https://app.example/health --expect-status 200
    shipyard alarm list
    shipyard alarm delete errors

A group watches them through its ``alarmConfiguration`` (``{"enabled": true, "alarms":
[{"name": "errors"}]}``). These commands call the Shipyard extension operations
(ShipyardPutAlarm, ShipyardListAlarms, ShipyardDeleteAlarm).
"""

from __future__ import annotations

import argparse
from typing import Any

from shipyard.cli import output, progress
from shipyard.cli.client import CliError
from shipyard.cli.options import command
from shipyard.cli.subcommands import client_for as _client


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"seconds must not be negative: {text!r}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_alarm_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    alarm = command(
        subparsers,
        "alarm",
        help="define the alarms deployments watch",
        example="shipyard alarm list",
    )
    actions = alarm.add_subparsers(dest="action", metavar="ACTION", required=True)

    put = command(
        actions,
        "put",
        parents=[api],
        help="create or replace an alarm (a PromQL query or an HTTP check)",
        example="shipyard alarm put errors --prometheus http://prom:9090 --query 'app_errors'",
    )
    put.add_argument("name", metavar="NAME", help="alarm name, e.g. errors")
    check = put.add_mutually_exclusive_group(required=True)
    check.add_argument("--prometheus", metavar="URL", help="Prometheus server to query")
    check.add_argument("--http", metavar="URL", help="URL that must answer --expect-status")
    put.add_argument("--query", metavar="EXPR", help="PromQL; fires on any non-zero sample")
    put.add_argument(
        "--threshold", type=_number, metavar="X", help="fire on a sample above X instead"
    )
    put.add_argument("--expect-status", type=int, metavar="N", help="default 200")
    put.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="HTTP check limit")
    put.add_argument(
        "--bake",
        type=_seconds,
        metavar="SECONDS",
        help="after every host succeeded, keep watching this long before Succeeded",
    )
    put.set_defaults(run=cmd_alarm_put)

    listing = command(
        actions, "list", parents=[api], help="list the alarms", example="shipyard alarm list"
    )
    listing.set_defaults(run=cmd_alarm_list)

    delete = command(
        actions,
        "delete",
        parents=[api],
        help="delete an alarm",
        example="shipyard alarm delete errors",
    )
    delete.add_argument("name", metavar="NAME", help="alarm name, e.g. errors")
    delete.set_defaults(run=cmd_alarm_delete)


def put_request(args: argparse.Namespace) -> dict[str, Any]:
    """The ShipyardPutAlarm body the ``put`` arguments describe."""
    body: dict[str, Any] = {"alarmName": args.name}
    if args.prometheus is not None:
        if args.query is None:
            raise CliError("alarm put: --prometheus needs --query", 2)
        if args.expect_status is not None or args.timeout is not None:
            raise CliError("alarm put: --expect-status and --timeout go with --http", 2)
        check: dict[str, Any] = {"url": args.prometheus, "query": args.query}
        if args.threshold is not None:
            check["threshold"] = args.threshold
        body["prometheus"] = check
    else:
        if args.query is not None or args.threshold is not None:
            raise CliError("alarm put: --query and --threshold go with --prometheus", 2)
        check = {"url": args.http}
        if args.expect_status is not None:
            check["expectStatus"] = args.expect_status
        if args.timeout is not None:
            check["timeoutSeconds"] = args.timeout
        body["http"] = check
    if args.bake is not None:
        body["bakeSeconds"] = args.bake
    return body


def describe(alarm: dict[str, Any]) -> list[str]:
    """[name, kind, what it checks, bake] for one alarm as the API answers it."""
    if "prometheus" in alarm:
        check = alarm["prometheus"]
        rule = "non-zero" if check.get("threshold") is None else f"> {check['threshold']:g}"
        what = f"{check['query']} ({rule}) at {check['url']}"
        kind = "prometheus"
    else:
        check = alarm.get("http", {})
        what = f"GET {check.get('url')} answers {check.get('expectStatus', 200)}"
        kind = "http"
    bake = float(alarm.get("bakeSeconds") or 0)
    return [str(alarm.get("alarmName")), kind, what, f"{bake:g}s" if bake else "-"]


def cmd_alarm_put(args: argparse.Namespace) -> int:
    body = put_request(args)
    client = _client(args)
    client.call_extension("ShipyardPutAlarm", body)
    saved = client.call_extension("ShipyardGetAlarm", {"alarmName": args.name})["alarm"]
    name, kind, what, bake = describe(saved)
    print(f"Saved alarm {name} ({kind}): {what}; bake time {bake}")
    return 0


def cmd_alarm_list(args: argparse.Namespace) -> int:
    found = _client(args).call_extension("ShipyardListAlarms", {}).get("alarms", [])
    if output.wants_json(args):
        output.emit_json(found)
        return 0
    rows = [["NAME", "KIND", "CHECK", "BAKE"], *(describe(alarm) for alarm in found)]
    for line in progress.table(rows) if found else ["no alarms defined"]:
        print(line)
    return 0


def cmd_alarm_delete(args: argparse.Namespace) -> int:
    _client(args).call_extension("ShipyardDeleteAlarm", {"alarmName": args.name})
    print(f"Deleted alarm {args.name}")
    return 0
