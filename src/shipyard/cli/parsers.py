"""The client subcommands' parsers: setup (app, group), instances, revisions (push,
validate), deployments (deploy, status, stop, steer, rollback, logs, history) and
shell completion. Every command has an example and every flag a help text; a flag name
means one thing across subcommands (docs/cli.md lists them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from shipyard.cli import completion, fleet, setup
from shipyard.cli import subcommands as commands
from shipyard.cli.client import ShipyardClient
from shipyard.cli.options import api_options, command

ClientCommand = Callable[[argparse.Namespace, ShipyardClient], int]


def _with_client(run: ClientCommand) -> Callable[[argparse.Namespace], int]:
    return lambda args: run(args, commands.client_for(args))


def add_setup_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    app = command(
        subparsers,
        "app",
        help="create, list and delete applications",
        example="shipyard app create MyApp",
    )
    actions = app.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = command(
        actions,
        "create",
        parents=[api],
        help="create an application",
        example="shipyard app create MyApp",
    )
    create.add_argument("name", metavar="NAME", help="application name, e.g. MyApp")
    create.set_defaults(run=_with_client(setup.cmd_app_create))
    listing = command(
        actions,
        "list",
        parents=[api],
        help="list applications",
        example="shipyard app list --output json",
    )
    listing.set_defaults(run=_with_client(setup.cmd_app_list))
    delete = command(
        actions,
        "delete",
        parents=[api],
        help="delete an application and its groups",
        example="shipyard app delete MyApp",
    )
    delete.add_argument("name", metavar="NAME", help="application name, e.g. MyApp")
    delete.set_defaults(run=_with_client(setup.cmd_app_delete))

    group = command(
        subparsers,
        "group",
        help="create, change and show deployment groups",
        example="shipyard group create MyApp web --tag role=web",
    )
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    examples = {
        "create": "shipyard group create MyApp web --tag role=web --auto-rollback failure",
        "update": "shipyard group update MyApp web --require-approval",
    }
    for verb, text in (
        ("create", "create a deployment group (no service role needed)"),
        ("update", "change a deployment group: only the flags given change"),
    ):
        sub = command(actions, verb, parents=[api], help=text, example=examples[verb])
        sub.add_argument("application", metavar="APPLICATION", help="application name, e.g. MyApp")
        sub.add_argument("group", metavar="GROUP", help="deployment group name, e.g. web")
        _group_flags(sub)
        run = setup.cmd_group_create if verb == "create" else setup.cmd_group_update
        sub.set_defaults(run=_with_client(run))
    show = command(
        actions,
        "show",
        parents=[api],
        help="show a deployment group's settings, or list an application's groups",
        example="shipyard group show MyApp web",
    )
    show.add_argument("application", metavar="APPLICATION", help="application name, e.g. MyApp")
    show.add_argument("group", metavar="GROUP", nargs="?", help="group name (default: list them)")
    show.set_defaults(run=_with_client(setup.cmd_group_show))


def _group_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="target instances with this tag (repeat: any of them); KEY alone matches any value",
    )
    sub.add_argument(
        "--deployment-config",
        metavar="NAME",
        help="default config, e.g. CodeDeployDefault.HalfAtATime (default OneAtATime)",
    )
    sub.add_argument(
        "--style", choices=sorted(setup.STYLES), help="in-place (default) or blue-green"
    )
    sub.add_argument(
        "--load-balancer",
        metavar="NAME",
        help="control traffic through this HAProxy backend (WITH_TRAFFIC_CONTROL)",
    )
    sub.add_argument(
        "--auto-rollback",
        nargs="*",
        choices=sorted(setup.ROLLBACK_EVENTS),
        metavar="EVENT",
        help="roll back on: failure, alarm, request (none given: turn it off)",
    )
    sub.add_argument(
        "--alarm",
        action="append",
        metavar="NAME",
        help="stop on this alarm (see 'shipyard alarm put'); --alarm '' turns alarms off",
    )
    sub.add_argument(
        "--trigger",
        action="append",
        metavar="NAME=URL",
        help="POST deployment events to this webhook; --trigger '' removes them",
    )
    sub.add_argument(
        "--require-approval",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="deployments wait for 'shipyard approve' before starting hosts",
    )


def add_instance_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    instance = command(
        subparsers,
        "instance",
        help="register hosts and see their agents",
        example="shipyard instance list",
    )
    actions = instance.add_subparsers(dest="action", metavar="ACTION", required=True)
    reg = command(
        actions,
        "register",
        parents=[api_options(with_endpoint=False)],
        help="register an instance and write its agent config",
        example="shipyard instance register web-1 --tag role=web "
        "--agent-config /etc/shipyard-agent.yml",
    )
    reg.add_argument("name", metavar="NAME", help="instance name, e.g. web-1")
    reg.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag groups target"
    )
    reg.add_argument(
        "--endpoint",
        dest="agent_endpoint",
        metavar="URL",
        help="server URL the agent will use (also used here unless set otherwise)",
    )
    reg.add_argument(
        "--agent-config",
        required=True,
        metavar="PATH",
        help="agent config file to write (--format codedeploy: the agent's conf directory)",
    )
    reg.add_argument(
        "--format",
        choices=["shipyard", "codedeploy"],
        default="shipyard",
        help="config for Shipyard's agent, or the stock CodeDeploy agent's two files",
    )
    reg.add_argument("--root-dir", metavar="DIR", help="agent deployment root")
    reg.add_argument("--log-dir", metavar="DIR", help="agent log directory")
    reg.add_argument("--pid-dir", metavar="DIR", help="stock agent pid directory")
    reg.set_defaults(run=commands.cmd_instance_register)
    dereg = command(
        actions,
        "deregister",
        parents=[api],
        help="deregister an instance",
        example="shipyard instance deregister web-1",
    )
    dereg.add_argument("name", metavar="NAME", help="instance name, e.g. web-1")
    dereg.set_defaults(run=commands.cmd_instance_deregister)
    listing = command(
        actions,
        "list",
        parents=[api],
        help="registered instances: agent state and version, the revision each runs per group",
        example="shipyard instance list --tag role=web",
    )
    listing.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only instances with this tag",
    )
    listing.set_defaults(run=_with_client(fleet.cmd_instance_list))


def add_revision_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    push = command(
        subparsers,
        "push",
        parents=[api],
        help="validate and bundle a directory, upload it and register it as a revision",
        example="shipyard push --application MyApp --source ./myapp --bucket releases",
    )
    push.add_argument("--application", required=True, help="application name, e.g. MyApp")
    push.add_argument("--source", required=True, metavar="DIR", help="directory with appspec.yml")
    push.add_argument("--bucket", required=True, help="bundle store bucket (created if missing)")
    push.add_argument(
        "--key", help="object key; its suffix picks the bundle type (default: APP/<hash>.zip)"
    )
    push.add_argument("--bundle-type", choices=["zip", "tar", "tgz"], help="zip, tar or tgz")
    push.add_argument("--description", help="revision description")
    push.set_defaults(run=commands.cmd_push)

    validate = command(
        subparsers,
        "validate",
        help="check a bundle directory as push and the agent do (for CI)",
        example="shipyard validate ./myapp",
    )
    validate.add_argument("source", metavar="DIR", help="directory with appspec.yml")
    validate.add_argument(
        "--output", choices=["text", "json"], default=argparse.SUPPRESS, help="text or json"
    )
    validate.set_defaults(run=commands.cmd_validate)


def add_deployment_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    deploy = command(
        subparsers,
        "deploy",
        parents=[api],
        help="create a deployment and follow it to the end",
        example="shipyard deploy --application MyApp --group web --bucket releases "
        "--key MyApp/x.zip",
    )
    deploy.add_argument("--application", required=True, help="application name, e.g. MyApp")
    deploy.add_argument("--group", required=True, help="deployment group, e.g. web")
    deploy.add_argument("--bucket", help="bucket of the bundle")
    deploy.add_argument("--key", help="object key of the bundle")
    deploy.add_argument("--bundle-type", choices=["zip", "tar", "tgz"], help="default: from --key")
    deploy.add_argument("--object-version", metavar="ID", help="object version of the bundle")
    deploy.add_argument("--etag", help="ETag the bundle must have")
    deploy.add_argument("--github-repo", metavar="ACCOUNT/REPO", help="GitHub revision: repository")
    deploy.add_argument("--commit", help="GitHub revision: commit id")
    deploy.add_argument(
        "--deployment-config", metavar="NAME", help="e.g. CodeDeployDefault.AllAtOnce"
    )
    deploy.add_argument("--description", help="deployment description")
    deploy.add_argument(
        "--file-exists-behavior",
        type=str.upper,
        choices=["DISALLOW", "OVERWRITE", "RETAIN"],
        help="files already at a destination: DISALLOW (fail), OVERWRITE or RETAIN",
    )
    deploy.add_argument(
        "--ignore-application-stop-failures",
        action="store_true",
        help="go on when the previous revision's ApplicationStop fails",
    )
    deploy.add_argument("--no-wait", action="store_true", help="print the id and return")
    deploy.add_argument("--logs", action="store_true", help="stream hook output while following")
    deploy.set_defaults(run=commands.cmd_deploy)

    status = command(
        subparsers,
        "status",
        parents=[api],
        help="show a deployment (exit 1 if it failed)",
        example="shipyard status d-ABCDEFGHI --watch",
    )
    status.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="e.g. d-ABCDEFGHI")
    status.add_argument("--watch", action="store_true", help="follow it live until it ends")
    status.set_defaults(run=commands.cmd_status)

    stop = command(
        subparsers,
        "stop",
        parents=[api],
        help="stop a deployment",
        example="shipyard stop d-ABCDEFGHI",
    )
    stop.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="e.g. d-ABCDEFGHI")
    stop.add_argument(
        "--rollback",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="roll updated hosts back (default: the deployment's rollback configuration)",
    )
    stop.set_defaults(run=commands.cmd_stop)

    for verb, text in (
        ("pause", "start no more hosts until resumed"),
        ("resume", "go on starting hosts"),
        ("approve", "let a deployment that waits for approval go on"),
    ):
        steer = command(
            subparsers, verb, parents=[api], help=text, example=f"shipyard {verb} d-ABCDEFGHI"
        )
        steer.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="e.g. d-ABCDEFGHI")
        steer.set_defaults(run=commands.cmd_steer, verb=verb)

    cont = command(
        subparsers,
        "continue",
        parents=[api],
        help="reroute traffic to a blue/green deployment's new hosts, or end its wait",
        example="shipyard continue d-ABCDEFGHI --wait-type termination",
    )
    cont.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="e.g. d-ABCDEFGHI")
    cont.add_argument(
        "--wait-type",
        choices=sorted(commands.WAIT_TYPES),
        default="ready",
        help="ready (default): reroute traffic now; termination: end the original hosts now",
    )
    cont.set_defaults(run=commands.cmd_continue)

    rollback = command(
        subparsers,
        "rollback",
        parents=[api],
        help="go back to the last good revision of a group",
        example="shipyard rollback --application MyApp --group web --emergency",
    )
    rollback.add_argument("--application", required=True, help="application name, e.g. MyApp")
    rollback.add_argument("--group", required=True, help="deployment group, e.g. web")
    rollback.add_argument(
        "--emergency",
        action="store_true",
        help="stop what runs, skip stop scripts, redeploy every host at once (AllAtOnce)",
    )
    rollback.add_argument("--no-wait", action="store_true", help="do not follow the rollback")
    rollback.set_defaults(run=commands.cmd_rollback)

    logs = command(
        subparsers,
        "logs",
        parents=[api],
        help="print hook script output",
        example="shipyard logs d-ABCDEFGHI --follow",
    )
    logs.add_argument("deployment_id", metavar="DEPLOYMENT_ID", help="e.g. d-ABCDEFGHI")
    logs.add_argument("--target", help="one target, e.g. web-1 (default: all)")
    logs.add_argument("--event", help="one lifecycle event, e.g. ApplicationStart (default: all)")
    logs.add_argument(
        "--follow", action="store_true", help="print output as it comes until the deployment ends"
    )
    logs.set_defaults(run=commands.cmd_logs)

    history = command(
        subparsers,
        "history",
        parents=[api],
        help="recent deployments of an application or one of its groups",
        example="shipyard history MyApp web --limit 5",
    )
    history.add_argument("application", metavar="APPLICATION", help="application name, e.g. MyApp")
    history.add_argument("group", metavar="GROUP", nargs="?", help="one group (default: all)")
    history.add_argument(
        "--limit", type=int, default=fleet.HISTORY_LIMIT, help="how many (default 20)"
    )
    history.set_defaults(run=_with_client(fleet.cmd_history))


def add_completion_command(subparsers: Any, root: argparse.ArgumentParser) -> None:
    comp = command(
        subparsers,
        "completion",
        help="print a shell completion script",
        example="source <(shipyard completion bash)",
    )
    comp.add_argument("shell", choices=["bash", "zsh"], help="bash or zsh")
    comp.set_defaults(run=lambda args: completion.print_script(root, args.shell))
