"""Pieces every ``shipyard`` parser shares: the parser class that reports a mistake as one
line, the connection and output options of client subcommands, and commands with an
example in their help."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from shipyard.cli.client import EXIT_USAGE, CliError
from shipyard.cli.output import FORMATS


class Parser(argparse.ArgumentParser):
    """Reports a usage mistake as one line instead of argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("shipyard").strip()
        raise CliError(
            f"{where + ': ' if where else ''}{message} (see '{self.prog} --help')", EXIT_USAGE
        )


def api_options(*, with_endpoint: bool = True) -> Parser:
    """Options every client subcommand takes (also accepted before the subcommand)."""
    parent = Parser(add_help=False)
    if with_endpoint:
        parent.add_argument(
            "--endpoint",
            default=argparse.SUPPRESS,
            help="server URL, e.g. http://127.0.0.1:8420 (default: $SHIPYARD_ENDPOINT)",
        )
    parent.add_argument(
        "--region", default=argparse.SUPPRESS, help="signing region, e.g. us-east-1"
    )
    parent.add_argument(
        "--profile", default=argparse.SUPPRESS, help="AWS profile for credentials, e.g. default"
    )
    parent.add_argument(
        "--output",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="text for people (default) or json for scripts, e.g. --output json",
    )
    return parent


def command(subparsers: Any, name: str, *, help: str, example: str, **kwargs: Any) -> Parser:
    """A subcommand whose ``--help`` ends with an example."""
    parser: Parser = subparsers.add_parser(
        name,
        help=help,
        description=help[:1].upper() + help[1:] + ".",
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    return parser
