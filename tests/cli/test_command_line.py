"""The command line itself: one readable line and a documented exit code for each
mistake, --version, shell completion, an example and help on every command and flag,
and docs/cli.md naming every subcommand and flag ``--help`` shows."""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard import __version__
from shipyard.cli import completion
from shipyard.cli.main import build_parser
from tests.test_cli import assert_one_line_error, cli_env, shipyard

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def credentials(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n"
    )
    return cli_env(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("127.0.0.1:8420", ["is not a URL", "http://127.0.0.1:8420"]),
        ("http://127.0.0.1:8420/shipyard", ["has a path", "http://127.0.0.1:8420"]),
        ("http://127.0.0.1:99999", ["invalid port"]),
    ],
)
def test_a_malformed_endpoint_is_a_usage_error(
    tmp_path: Path, endpoint: str, words: list[str]
) -> None:
    result = shipyard("--endpoint", endpoint, "status", "d-ABCDEFGHI", env=credentials(tmp_path))
    assert_one_line_error(result, 2, *words)


def test_register_refuses_an_agent_endpoint_it_would_write_broken(tmp_path: Path) -> None:
    result = shipyard(
        "instance", "register", "web-1", "--endpoint", "127.0.0.1:8420",
        "--agent-config", str(tmp_path / "agent.yml"), env=credentials(tmp_path),
    )  # fmt: skip
    assert_one_line_error(result, 2, "is not a URL")
    assert not (tmp_path / "agent.yml").exists()


class OtherServer(BaseHTTPRequestHandler):
    """Some other web server: an HTML page for everything."""

    status = 404

    def do_POST(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body><h1>Welcome to nginx</h1></body></html>")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(params=[404, 200])
def other_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (OtherServer,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_another_http_server_is_named_not_dumped(tmp_path: Path, other_server: str) -> None:
    env = credentials(tmp_path)
    for args in (["status", "d-ABCDEFGHI"], ["approve", "d-ABCDEFGHI"]):
        result = shipyard("--endpoint", other_server, *args, env=env)
        assert_one_line_error(result, 3, "is it a Shipyard server")
        assert "nginx" not in result.stderr


def test_server_refuses_a_database_it_cannot_use(tmp_path: Path) -> None:
    result = shipyard(
        "server", "--data-dir", str(tmp_path), "--database", "mysql://x", env=cli_env()
    )
    assert_one_line_error(result, 2, "mysql://x", "PostgreSQL")
    assert result.stdout == ""


def test_server_on_a_port_in_use_says_so_before_starting(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = shipyard("server", "--data-dir", str(tmp_path), "--port", port, env=cli_env())
    assert_one_line_error(result, 1, f"127.0.0.1:{port} is in use")
    assert "starting" not in result.stdout


def test_version() -> None:
    result = shipyard("--version", env=cli_env())
    assert (result.returncode, result.stdout.strip()) == (0, f"shipyard {__version__}")


def walk(
    parser: argparse.ArgumentParser, path: str = "shipyard"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")


COMMANDS = [(path, parser) for path, parser in walk(build_parser()) if path != "shipyard demo"]


@pytest.mark.parametrize(("path", "parser"), COMMANDS[1:], ids=[p for p, _ in COMMANDS[1:]])
def test_every_command_has_an_example_and_every_flag_help(
    path: str, parser: argparse.ArgumentParser
) -> None:
    assert parser.epilog and f"example:\n  {path}" in parser.epilog.replace("source <(", "")
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):  # its choices have help
            assert action.help, f"{path} {action.option_strings or action.dest} has no help"


def test_each_flag_name_means_one_thing() -> None:
    """A flag name is not reused for a different purpose: compare the destinations."""
    meanings: dict[str, set[str]] = {}
    for _path, parser in COMMANDS:
        for action in parser._actions:
            for flag in action.option_strings:
                meanings.setdefault(flag, set()).add(action.dest)
    # --config is a config *file* for both server and agent; --endpoint of register is the
    # agent's server URL (kept apart in its destination only).
    mixed = {
        flag: dests for flag, dests in meanings.items() if len(dests) > 1 and flag != "--endpoint"
    }
    assert mixed == {}


def test_docs_cli_md_names_every_command_and_flag() -> None:
    text = DOCS.read_text()
    missing = []
    for path, parser in COMMANDS:
        # a synopsis line or a heading starting with the command
        if not re.search(rf"^(## )?{re.escape(path)}( |$)", text, re.MULTILINE):
            missing.append(path)
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag not in ("--help",) and flag not in text:
                    missing.append(f"{path} {flag}")
    assert missing == []


def test_bash_completion_completes_commands_and_flags() -> None:
    script = completion.script(build_parser(), "bash")

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        probe = (
            f"{script}\nCOMP_WORDS=(shipyard {line}); COMP_CWORD={len(words)}; "
            '_shipyard; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert complete("gr") == ["group"]
    assert complete("group", "cr") == ["create"]
    assert "--require-approval" in complete("group", "create", "--req")
    assert complete("status", "--wa") == ["--watch"]
    zsh = shipyard("completion", "zsh", env=cli_env())
    assert zsh.returncode == 0 and "bashcompinit" in zsh.stdout


def test_the_readme_path_uses_the_shipyard_cli_alone() -> None:
    """The README's first deployment needs no AWS CLI (its commands are run end to end by
    tests/e2e/test_operator_cli.py::test_the_readme_path_with_the_shipyard_cli_alone)."""
    readme = (DOCS.parents[1] / "README.md").read_text()
    section = readme.split("## A first deployment by hand", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    commands = [line.split()[0] for block in blocks for line in block.splitlines() if line.strip()]
    assert commands and "aws" not in commands
    continued = ("#", "export", "python3", "--")  # comments, settings, continuation lines
    words = {c for c in commands if not c.startswith(continued)}
    assert words <= {"shipyard", ".venv/bin/shipyard"}, words
    for block in blocks:  # every subcommand the README runs exists
        for line in block.splitlines():
            if line.startswith("shipyard "):
                name = line.split()[1]
                assert name in {p.split()[1] for p, _ in COMMANDS[1:]}, line
