"""The ``shipyard`` command line: run the server or an agent, and drive deployments.

Client subcommands (in ``shipyard.cli.subcommands``) talk to the server through its public API.
Every user mistake or API error becomes one line on stderr, ``shipyard: error: ...``,
and exit status 2 (usage) or 1 (the operation failed); never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from shipyard.cli import subcommands as commands
from shipyard.cli.alarms import add_alarm_commands
from shipyard.cli.client import CliError
from shipyard.cli.subcommands import DEFAULT_ENDPOINT, DEFAULT_REGION
from shipyard.cli.users import add_user_commands
from shipyard.config import ConfigError, ServerConfig, build


class _Parser(argparse.ArgumentParser):
    """Reports a usage mistake as one line instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("shipyard").strip()
        raise CliError(f"{where + ': ' if where else ''}{message} (see '{self.prog} --help')", 2)


def _import_entry(module: str, what: str) -> Callable[..., Any]:
    """Import ``module.main`` late: heavy or optional parts load only when used."""
    try:
        entry: Callable[..., Any] = importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise CliError(f"{what} is not available in this installation") from None
    return entry


# --- server and agent ----------------------------------------------------------------


def cmd_server(args: argparse.Namespace) -> int:
    if args.data_dir is None and args.config is None and "SHIPYARD_DATA_DIR" not in os.environ:
        raise CliError("server: --data-dir is required", 2)
    flags = {
        "data_dir": args.data_dir,
        "host": args.host,
        "port": args.port,
        "database": args.database,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "public_url": args.public_url,
        "traffic_router": args.traffic_router,
        "traffic_address": args.traffic_address,
        "agent_timeout": args.agent_timeout,
        "provisioner": args.provisioner,
    }
    config_file = Path(args.config) if args.config else None
    config: ServerConfig = build(ServerConfig, file=config_file, flags=flags)
    if bool(config.tls_cert) != bool(config.tls_key):
        raise CliError("server: --tls-cert and --tls-key must be given together", 2)
    import sqlalchemy.exc

    from shipyard.server.main import serve

    credentials = (config.data_dir / "credentials").resolve()
    print(f"Shipyard server starting on {config.url}", flush=True)
    print(f"Admin credentials: {credentials}", flush=True)
    print(f"  export AWS_SHARED_CREDENTIALS_FILE={shlex.quote(str(credentials))}", flush=True)
    try:
        serve(config)
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CliError(f"server could not start: {first_line}") from None
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    path = Path(args.config)
    if not path.is_file():
        raise CliError(
            f"agent: no config file at {path} (write one with 'shipyard instance register')", 2
        )
    run_agent = _import_entry("shipyard.agent.loop", "the agent")
    return int(run_agent(path) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    run_demo = _import_entry("shipyard.demo.run", "the demo")
    return int(run_demo(list(args.demo_args)) or 0)


# --- the command line ------------------------------------------------------------------


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _api_options(*, with_endpoint: bool = True) -> _Parser:
    """Options every client subcommand takes (also accepted before the subcommand)."""
    parent = _Parser(add_help=False)
    if with_endpoint:
        parent.add_argument("--endpoint", default=argparse.SUPPRESS, help="server URL")
    parent.add_argument("--region", default=argparse.SUPPRESS, help="signing region")
    parent.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile to use")
    return parent


def _add_instance_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    instance = subparsers.add_parser("instance", help="manage on-premises instances")
    actions = instance.add_subparsers(dest="action", metavar="ACTION", required=True)
    reg = actions.add_parser(
        "register",
        parents=[_api_options(with_endpoint=False)],
        help="register an instance and write its agent config",
    )
    reg.add_argument("name", metavar="NAME")
    reg.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    reg.add_argument(
        "--endpoint",
        dest="agent_endpoint",
        metavar="URL",
        help="server URL the agent will use (also used here unless set otherwise)",
    )
    reg.add_argument(
        "--output",
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
    dereg = actions.add_parser("deregister", parents=[api], help="deregister an instance")
    dereg.add_argument("name", metavar="NAME")
    dereg.set_defaults(run=commands.cmd_instance_deregister)
    listing = actions.add_parser("list", parents=[api], help="list on-premises instances")
    listing.add_argument("--status", choices=["Registered", "Deregistered"])
    listing.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    listing.set_defaults(run=commands.cmd_instance_list)


def _add_deploy_command(subparsers: Any, api: argparse.ArgumentParser) -> None:
    deploy = subparsers.add_parser(
        "deploy", parents=[api], help="create a deployment and follow it to the end"
    )
    deploy.add_argument("--application", required=True)
    deploy.add_argument("--group", required=True, help="deployment group")
    deploy.add_argument("--bucket")
    deploy.add_argument("--key")
    deploy.add_argument("--bundle-type", choices=["zip", "tar", "tgz"])
    deploy.add_argument("--version")
    deploy.add_argument("--etag")
    deploy.add_argument("--github-repo", metavar="ACCOUNT/REPO")
    deploy.add_argument("--commit")
    deploy.add_argument("--config", help="deployment config name")
    deploy.add_argument("--description")
    deploy.add_argument(
        "--file-exists-behavior", type=str.upper, choices=["DISALLOW", "OVERWRITE", "RETAIN"]
    )
    deploy.add_argument("--ignore-application-stop-failures", action="store_true")
    deploy.add_argument("--no-wait", action="store_true", help="print the id and return")
    deploy.set_defaults(run=commands.cmd_deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="shipyard", description="Self-hosted, CodeDeploy-compatible deployments.")
    parser.add_argument(
        "--endpoint", help=f"server URL (default: $SHIPYARD_ENDPOINT or {DEFAULT_ENDPOINT})"
    )
    parser.add_argument("--region", help=f"signing region (default: {DEFAULT_REGION})")
    parser.add_argument("--profile", help="AWS profile for credentials")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    api = _api_options()

    server = subparsers.add_parser("server", help="run the control plane")
    server.add_argument("--config", metavar="FILE", help="YAML file with any ServerConfig setting")
    server.add_argument("--data-dir", help="where the database and credentials live")
    server.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=_port, help="port to listen on (default 8420)")
    server.add_argument("--database", metavar="URL", help="postgresql://... (default SQLite)")
    server.add_argument("--tls-cert", metavar="FILE")
    server.add_argument("--tls-key", metavar="FILE")
    server.add_argument("--public-url", metavar="URL", help="URL agents use to reach the server")
    server.add_argument(
        "--traffic-router",
        choices=["haproxy", "memory"],
        help="load balancer for WITH_TRAFFIC_CONTROL deployment groups",
    )
    server.add_argument(
        "--traffic-address",
        metavar="ADDR",
        help="HAProxy runtime API: unix:/path/admin.sock or tcp:HOST:PORT",
    )
    server.add_argument(
        "--provisioner",
        choices=["podman", "memory"],
        help="starts replacement hosts for blue/green COPY_AUTO_SCALING_GROUP",
    )
    server.add_argument(
        "--agent-timeout",
        type=float,
        metavar="SECONDS",
        help="a host whose agent is silent this long fails (default 60)",
    )
    server.set_defaults(run=cmd_server)

    agent = subparsers.add_parser("agent", help="run the agent on this host")
    agent.add_argument("--config", required=True, metavar="FILE")
    agent.set_defaults(run=cmd_agent)

    _add_instance_commands(subparsers, api)

    push = subparsers.add_parser("push", parents=[api], help="bundle a directory as a revision")
    push.add_argument("--application", required=True)
    push.add_argument("--source", required=True, metavar="DIR")
    push.add_argument("--bucket", required=True)
    push.add_argument("--key", help="object key (default: APPLICATION/<content hash>.zip)")
    push.add_argument("--description")
    push.set_defaults(run=commands.cmd_push)

    _add_deploy_command(subparsers, api)
    add_alarm_commands(subparsers)
    add_user_commands(subparsers)

    status = subparsers.add_parser("status", parents=[api], help="show a deployment")
    status.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    status.set_defaults(run=commands.cmd_status)

    stop = subparsers.add_parser("stop", parents=[api], help="stop a deployment")
    stop.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
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
        steer = subparsers.add_parser(verb, parents=[api], help=text)
        steer.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
        steer.set_defaults(run=commands.cmd_steer, verb=verb)

    rollback = subparsers.add_parser(
        "rollback", parents=[api], help="go back to the last good revision of a group"
    )
    rollback.add_argument("--application", required=True)
    rollback.add_argument("--group", required=True)
    rollback.add_argument(
        "--emergency",
        action="store_true",
        help="abandon events in flight, skip stop scripts, and redeploy every host now",
    )
    rollback.add_argument("--no-wait", action="store_true", help="do not follow the rollback")
    rollback.set_defaults(run=commands.cmd_rollback)

    logs = subparsers.add_parser("logs", parents=[api], help="print hook script output")
    logs.add_argument("deployment_id", metavar="DEPLOYMENT_ID")
    logs.add_argument("--target", help="one target (default: all)")
    logs.add_argument("--event", help="one lifecycle event (default: all)")
    logs.set_defaults(run=commands.cmd_logs)

    # No options of its own (not even --help): all its arguments go to shipyard.demo.run.
    demo = subparsers.add_parser("demo", help="a local rehearsal of a whole fleet", add_help=False)
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
        # The demo's own options pass through untouched; anywhere else they are mistakes.
        args, extra = parser.parse_known_args(argv)
        if extra and args.command != "demo":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.demo_args = extra
        return int(args.run(args))
    except CliError as exc:
        print(f"shipyard: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except ConfigError as exc:
        print(f"shipyard: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shipyard: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `shipyard logs ... | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
