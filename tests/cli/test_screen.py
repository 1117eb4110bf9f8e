"""The live view fitted to a terminal: never wider or taller than it, hosts that do not
fit summarised, a mark where a row is cut, natural host order, colour only when asked,
and each redraw over the last one (no copies left in the scrollback)."""

from __future__ import annotations

import io
import re

import pytest

from shipyard.cli import progress, screen
from tests.test_cli import T0, deployment, event

EVENTS = ["ApplicationStop", "DownloadBundle", "BeforeInstall", "Install", "AfterInstall",
          "ApplicationStart", "ValidateService"]  # fmt: skip
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def host(name: str, status: str, done: int, running: bool = False) -> dict[str, object]:
    events = [event(n, "Succeeded", i, i + 1.0) for i, n in enumerate(EVENTS[:done])]
    if running:
        events.append(event(EVENTS[done], "InProgress", float(done)))
    events += [event(n, "Pending") for n in EVENTS[len(events) :]]
    return {"instanceTarget": {"targetId": name, "status": status, "lifecycleEvents": events}}


def fleet(count: int) -> list[dict[str, object]]:
    hosts = [host(f"web-{i}", "Succeeded", 7) for i in range(1, count + 1)]
    hosts[count // 2] = host(f"web-{count // 2 + 1}", "InProgress", 6, running=True)
    return hosts


@pytest.mark.parametrize(("width", "height"), [(80, 24), (200, 50), (120, 30), (40, 10)])
def test_the_view_fits_the_terminal(width: int, height: int) -> None:
    lines = screen.fit(deployment("InProgress"), fleet(40), T0 + 9, width=width, height=height)
    assert len(lines) < height
    assert all(len(line) < width for line in lines)
    running = f"web-{40 // 2 + 1}"
    assert any(line.startswith(running) for line in lines), "the running host is kept"
    shown = sum(1 for line in lines if line.startswith("web-"))
    if shown < 40:
        summary = next(line for line in lines if line.startswith(screen.MORE_MARK))
        assert f"{40 - shown} more hosts ({40 - shown} Succeeded)" in summary


def test_at_80_columns_the_running_event_is_named_and_a_cut_is_marked() -> None:
    lines = screen.fit(deployment("InProgress"), fleet(3), T0 + 9, width=80, height=24)
    row = next(line for line in lines if line.startswith("web-2"))
    assert "ValidateService" in row  # the current event, before the grid that may be cut
    assert any(line.endswith(screen.CUT_MARK) for line in lines)
    assert all(len(line) <= 79 for line in lines)


def test_hosts_in_natural_order_and_running_time_counts_up() -> None:
    hosts = [host(n, "Succeeded", 7) for n in ("web-10", "web-2", "web-1")]
    hosts.append(host("web-3", "InProgress", 2, running=True))
    first = screen.fit(deployment("InProgress"), hosts, T0 + 5, width=200, height=50)
    names = [line.split()[0] for line in first if line.startswith("web-")]
    assert names == ["web-1", "web-2", "web-3", "web-10"]
    later = screen.fit(deployment("InProgress"), hosts, T0 + 8, width=200, height=50)
    times = [line.split()[2] for line in first + later if line.startswith("web-3")]
    assert times == ["5.0s", "8.0s"]


def test_colour_only_when_asked() -> None:
    plain = screen.fit(deployment("InProgress"), fleet(3), T0 + 9, width=200, height=50)
    assert not any("\x1b" in line for line in plain)
    painted = screen.fit(
        deployment("InProgress"), fleet(3), T0 + 9, width=200, height=50, colour=True
    )
    assert any("\x1b[32m" in line for line in painted)
    assert [ANSI.sub("", line) for line in painted] == plain


def test_why_a_deployment_waits_is_shown() -> None:
    waiting = deployment(
        "InProgress",
        deploymentStatusMessages=["Paused: no new host starts until resumed (shipyard resume)"],
    )
    lines = screen.fit(waiting, fleet(3), T0 + 9, width=200, height=50)
    assert lines[1].startswith("Paused: no new host starts")
    ready = progress.wait_reasons(deployment("Ready", instanceTerminationWaitTimeStarted=True))
    assert ready == [
        "Ready: the replacement hosts wait for traffic to be rerouted (shipyard continue)",
        "Waiting to terminate the original hosts (termination wait time; "
        "shipyard continue --wait-type termination ends it)",
    ]
    assert progress.wait_reasons(deployment("Succeeded", deploymentStatusMessages=["x"])) == []


def test_redraws_go_back_over_the_last_view() -> None:
    out = io.StringIO()
    redrawer = screen.Redrawer(out)
    redrawer.draw(["a", "b", "c"])
    redrawer.draw(["d", "e"])
    first, second = out.getvalue().split("\x1b[J")[:2]
    assert not first.startswith("\x1b[")
    assert second.startswith("\x1b[3A\r")  # up exactly the three lines drawn before
    assert second.count("\n") == 2


def test_colour_leaves_names_with_dashes_alone() -> None:
    painted = screen.fit(
        deployment("InProgress"), fleet(3), T0 + 9, width=200, height=50, colour=True
    )
    assert painted[0].startswith("d-ABCDEFGHI")
    assert any(line.startswith("web-1 ") for line in painted)
