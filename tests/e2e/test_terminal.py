"""``shipyard deploy`` in a real terminal (tmux: send-keys, capture-pane) at 80x24,
200x50 and a short 100x8: the live view of a real deployment fits the terminal, is
redrawn in place (no copies left in the scrollback), and Ctrl-C says what goes on.

Each test runs its own tmux server (``-L`` with a private socket name) and kills only it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import service_missing
from tests.e2e.conftest import SHARED_ROOT, Fleet, Uploader, make_bundle
from tests.e2e.test_shipyard_cli import SHIPYARD
from tests.support import wait_until

HOOKS = ("BeforeInstall", "AfterInstall", "ApplicationStart", "ValidateService")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def slow_bundle(seconds: float, hang_at: str | None = None) -> bytes:
    """Every hook sleeps a little, so the view is redrawn many times while hosts run."""
    hooks = "".join(f"  {event}:\n    - location: hook.sh\n      timeout: 120\n" for event in HOOKS)
    script = f"#!/bin/sh\nsleep {seconds}\n"
    if hang_at:
        script += f'if [ "$LIFECYCLE_EVENT" = {hang_at} ]; then sleep 60; fi\n'
    appspec = (
        "version: 0.0\nos: linux\nfiles:\n"
        f"  - source: site\n    destination: {SHARED_ROOT}/www\nhooks:\n{hooks}"
    )
    return make_bundle({"appspec.yml": appspec, "site/index.html": "hi", "hook.sh": script})


class Terminal:
    """One tmux session of a given size running a shell."""

    def __init__(self, name: str, width: int, height: int, env: dict[str, str]) -> None:
        self.socket = f"shipyard-test-{os.getpid()}-{name}"
        self.name = name
        self.run("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                 *(f"-e{k}={v}" for k, v in env.items()), "bash --norc --noprofile")  # fmt: skip
        self.run("set-option", "-t", name, "history-limit", "10000")

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def type(self, command: str) -> None:
        self.run("send-keys", "-t", self.name, command, "Enter")

    def interrupt(self) -> None:
        self.run("send-keys", "-t", self.name, "C-c")

    def everything(self) -> list[str]:
        """The scrollback and the screen, wrapped lines joined back (-J), colours kept (-e)."""
        text = self.run("capture-pane", "-p", "-J", "-e", "-t", self.name, "-S", "-", "-E", "-")
        return text.rstrip("\n").splitlines()

    def wait_for(self, pattern: str, timeout: float = 120.0) -> list[str]:
        found = re.compile(pattern)

        def seen() -> list[str] | None:
            lines = self.everything()
            return lines if any(found.search(ANSI.sub("", line)) for line in lines) else None

        return wait_until(seen, lambda: "\n".join(self.everything()), timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def terminal(fleet: Fleet) -> Iterator[type[Terminal]]:
    if shutil.which("tmux") is None:
        service_missing("tmux (the terminal tests; scripts/install installs it)")
    opened: list[Terminal] = []
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(fleet.server.data_dir / "credentials"),
        "AWS_CONFIG_FILE": "/nonexistent",
        "SHIPYARD_ENDPOINT": fleet.server.url,
        "TERM": "xterm-256color",
    }

    class Opened(Terminal):
        def __init__(self, name: str, width: int, height: int) -> None:
            super().__init__(name, width, height, env)
            opened.append(self)

    yield Opened
    for term in opened:
        term.close()


def set_up(fleet: Fleet, hosts: int) -> None:
    fleet.add_hosts([f"web-{i}" for i in range(1, hosts + 1)], {"role": "web"})
    fleet.cd.create_application(applicationName="shop")
    fleet.cd.create_deployment_group(
        applicationName="shop",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::000000000000:role/shipyard",
        deploymentConfigName="CodeDeployDefault.HalfAtATime",
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )


def deploy_command(location: dict[str, str]) -> str:
    words = [str(SHIPYARD), "deploy", "--application", "shop", "--group", "web"]
    words += ["--bucket", location["bucket"], "--key", location["key"]]
    return shlex.join(words) + "; echo rc=$?"


@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50), (100, 8)])
def test_the_live_view_fits_and_is_redrawn_in_place(
    fleet: Fleet, upload: Uploader, terminal: type[Terminal], width: int, height: int
) -> None:
    set_up(fleet, 6)
    location = upload("slow.zip", slow_bundle(0.4))["s3Location"]
    term = terminal(f"t{width}x{height}", width, height)
    term.type(deploy_command(location))
    lines = term.wait_for(r"^rc=\d+$")
    plain = [ANSI.sub("", line) for line in lines]
    assert "rc=0" in plain, "\n".join(plain)
    assert not any("Traceback" in line for line in plain)
    # No line wrapped: -J joins a wrapped line back, so it would be wider than the pane.
    output = [line for line in plain if "echo rc=$?" not in line]  # not the typed command
    assert max(len(line) for line in output) <= width, "\n".join(plain)
    # Redrawn in place: the live view's headline (it starts with the deployment id) is on
    # the screen once, however many times it was drawn; no copies in the scrollback.
    deployment_id = re.search(r"Created deployment (d-\w+)", "\n".join(plain))
    assert deployment_id, plain
    headlines = [line for line in plain if line.startswith(f"{deployment_id.group(1)}  ")]
    assert len(headlines) == 1, "\n".join(plain)
    assert "Succeeded" in headlines[0]
    view = plain[plain.index(headlines[0]) :]
    view = view[: next(i for i, line in enumerate(view) if line.startswith("✓ succeeded"))]
    if height >= 24:  # every host has its row
        assert [line.split()[0] for line in view[2:]] == [f"web-{i}" for i in range(1, 7)]
    else:  # hosts that did not fit are summarised
        assert any(line.startswith("… ") and "more hosts" in line for line in view), view
    assert any("\x1b[32m" in line for line in lines), "colour on a terminal"


def test_ctrl_c_stops_following_and_says_the_deployment_goes_on(
    fleet: Fleet, upload: Uploader, terminal: type[Terminal]
) -> None:
    set_up(fleet, 2)
    location = upload("hang.zip", slow_bundle(0.1, hang_at="ApplicationStart"))["s3Location"]
    term = terminal("ctrlc", 80, 24)
    term.type(deploy_command(location))
    term.wait_for(r"ApplicationStart|^rc=")
    term.interrupt()
    plain = [ANSI.sub("", line) for line in term.wait_for(r"^rc=\d+$", timeout=30)]
    text = "\n".join(plain)
    assert "rc=130" in plain, text
    assert "Traceback" not in text
    stopped = re.search(r"stopped following (d-\w+); the deployment goes on on the server", text)
    assert stopped, text
    assert f"re-attach: shipyard status {stopped.group(1)} --watch" in text
    info = fleet.cd.get_deployment(deploymentId=stopped.group(1))["deploymentInfo"]
    assert info["status"] == "InProgress"
    fleet.cd.stop_deployment(deploymentId=stopped.group(1))
