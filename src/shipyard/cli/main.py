"""The ``shipyard`` command line: run the server or an agent, and drive deployments.

Client subcommands (in ``shipyard.cli.subcommands``) talk to the server through its public API.
Every user mistake or API error becomes one line on stderr, ``shipyard: error: ...``,
and exit status 2 (usage) or 1 (the operation failed); never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import shlex
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shipyard import __version__
from shipyard.cli import parsers
from shipyard.cli.alarms import add_alarm_commands
from shipyard.cli.client import EXIT_INTERRUPTED, EXIT_USAGE, CliError
from shipyard.cli.options import Parser, api_options, command
from shipyard.cli.output import FORMATS
from shipyard.cli.server_logging import configure_logging
from shipyard.cli.stacks import add_stack_commands
from shipyard.cli.subcommands import DEFAULT_ENDPOINT, DEFAULT_REGION
from shipyard.cli.users import add_user_commands
from shipyard.config import ConfigError, ServerConfig, build


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
    _check_database(config.database)
    _check_port_free(config.host, config.port)
    configure_logging(args.log_format or "text")
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


DATABASE_SCHEMES = ("sqlite", "postgresql")


def _check_database(url: str | None) -> None:
    scheme = (url or "sqlite").partition(":")[0].partition("+")[0]
    if scheme not in DATABASE_SCHEMES:
        raise CliError(
            f"server: --database {url!r}: Shipyard stores its data in PostgreSQL "
            "(postgresql://USER@HOST/DB) or SQLite (the default)",
            EXIT_USAGE,
        )


def _check_port_free(host: str, port: int) -> None:
    """Say a port is taken before printing anything that suggests the server started."""
    try:
        with socket.create_server((host, port), reuse_port=False):
            pass
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        reason = "is in use (another server? choose one with --port)" if busy else exc.strerror
        raise CliError(f"server could not start: {host}:{port} {reason}") from None


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

EXIT_CODES_HELP = """\
  0    success (for deploy, rollback and status: the deployment succeeded)
  1    the deployment failed or was stopped (deploy exits 1 even when its automatic
       rollback succeeded)
  2    usage error: a bad flag or value, or a bundle that does not validate
  3    no Shipyard server answers at the endpoint (refused, lost, or another server)
  4    the server refused the request (e.g. an application that does not exist)
  130  interrupted (Ctrl-C); a deployment being followed goes on on the server"""


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def _add_server_commands(subparsers: Any) -> None:
    server = command(
        subparsers,
        "server",
        help="run the control plane",
        example="shipyard server --data-dir /var/lib/shipyard",
    )
    server.add_argument(
        "--config", metavar="FILE", help="YAML file with any ServerConfig setting, e.g. server.yml"
    )
    server.add_argument("--data-dir", metavar="DIR", help="where the database and credentials live")
    server.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=_port, help="port to listen on (default 8420)")
    server.add_argument(
        "--database",
        metavar="URL",
        help="postgresql://USER@HOST/DB (default: SQLite in the data directory)",
    )
    server.add_argument("--tls-cert", metavar="FILE", help="PEM certificate to serve HTTPS")
    server.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
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
    server.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="server log lines on stderr: text (default) or one JSON object per line",
    )
    server.set_defaults(run=cmd_server)

    agent = command(
        subparsers,
        "agent",
        help="run the agent on this host",
        example="shipyard agent --config /etc/shipyard-agent.yml",
    )
    agent.add_argument(
        "--config", required=True, metavar="FILE", help="the file 'instance register' wrote"
    )
    agent.set_defaults(run=cmd_agent)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="shipyard",
        description="Self-hosted, CodeDeploy-compatible deployments.",
        epilog=f"exit codes:\n{EXIT_CODES_HELP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"shipyard {__version__}", help="print the version"
    )
    parser.add_argument(
        "--endpoint", help=f"server URL (default: $SHIPYARD_ENDPOINT or {DEFAULT_ENDPOINT})"
    )
    parser.add_argument("--region", help=f"signing region (default: {DEFAULT_REGION})")
    parser.add_argument("--profile", help="AWS profile for credentials")
    parser.add_argument(
        "--output", choices=FORMATS, default="text", help="text (default) or json for scripts"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    api = api_options()
    _add_server_commands(subparsers)
    parsers.add_setup_commands(subparsers, api)
    parsers.add_instance_commands(subparsers, api)
    parsers.add_revision_commands(subparsers, api)
    parsers.add_deployment_commands(subparsers, api)
    add_alarm_commands(subparsers, api)
    add_user_commands(subparsers, api)
    add_stack_commands(subparsers, api)
    parsers.add_completion_command(subparsers, parser)

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
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("shipyard: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `shipyard logs ... | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
