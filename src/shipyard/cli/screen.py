"""The live view of a deployment fitted to a terminal, and redrawn in place.

``fit`` turns the live table (``progress.live_rows``) into at most ``height - 1`` lines
no wider than ``width - 1`` characters, so moving the cursor back up always reaches the
first line (a view taller than the terminal leaves copies in the scrollback) and no line
wraps. Hosts that do not fit are summarised in one line (running and failed hosts are
kept first); a row cut at the right edge ends in ``CUT_MARK``. Colour is added only when
asked (``colour=True``, on a terminal), after the widths are computed on plain text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from shipyard.cli import progress

CUT_MARK = ">"
MORE_MARK = "…"
RESET = "\x1b[0m"
COLOURS = {
    "Succeeded": "\x1b[32m",
    "Failed": "\x1b[31m",
    "InProgress": "\x1b[33m",
    "Stopped": "\x1b[31m",
    "Skipped": "\x1b[2m",
}
# Symbols that appear nowhere else (not "-", which host names and ids contain).
SYMBOL_COLOURS = {
    progress.SYMBOLS[name]: COLOURS[name] for name in ("Succeeded", "Failed", "InProgress")
}
# Hosts shown first when not all fit: what needs looking at.
ROW_PRIORITY = {"Failed": 0, "InProgress": 1, "Pending": 3, "Succeeded": 4, "Skipped": 5}


def clip(line: str, width: int) -> str:
    """``line`` no wider than ``width``, ending in ``CUT_MARK`` when something was cut."""
    if len(line) <= width:
        return line
    return line[: max(width - 1, 0)] + CUT_MARK if width > 0 else ""


def _pick_rows(rows: list[list[str]], room: int) -> tuple[list[list[str]], list[list[str]]]:
    """Split target rows into those shown (natural order kept) and those summarised."""
    if len(rows) <= room:
        return rows, []
    keep = room - 1  # one line says what was left out
    ranked = sorted(range(len(rows)), key=lambda i: (ROW_PRIORITY.get(rows[i][1], 2), i))
    shown = sorted(ranked[: max(keep, 0)])
    hidden = sorted(ranked[max(keep, 0) :])
    return [rows[i] for i in shown], [rows[i] for i in hidden]


def _summary(hidden: Sequence[Sequence[str]]) -> str:
    counts = Counter(row[1] for row in hidden)
    parts = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return f"{MORE_MARK} {len(hidden)} more hosts ({parts})"


def _paint(line: str) -> str:
    for symbol, code in SYMBOL_COLOURS.items():
        line = line.replace(symbol, f"{code}{symbol}{RESET}")
    for status, code in COLOURS.items():
        line = line.replace(f"  {status}  ", f"  {code}{status}{RESET}  ")
    return line


def fit(
    deployment: Mapping[str, Any],
    raw_targets: Sequence[Mapping[str, Any]],
    now: float,
    *,
    width: int,
    height: int,
    colour: bool = False,
) -> list[str]:
    """The live view for a ``width`` x ``height`` terminal (see the module docstring)."""
    width, height = max(width - 1, 10), max(height - 1, 3)
    targets = [progress.target_of(t) for t in raw_targets]
    top = [progress.headline(deployment, now), *progress.wait_reasons(deployment)]
    top = [clip(line, width) for line in top][: height - 1]
    if not targets:
        return top
    header, *rows = progress.live_rows(targets, now)
    room = height - len(top) - 2  # the heading row and the legend
    legend: list[str] = [clip(progress.LEGEND, width)]
    if room < 2:
        legend, room = [], room + 1
    shown, hidden = _pick_rows(rows, max(room, 1))
    body = progress.table([header, *shown])
    lines = [*top, *(clip(line, width) for line in body)]
    if hidden:
        lines.append(clip(_summary(hidden), width))
    lines = (lines + legend)[:height]
    return [_paint(line) for line in lines] if colour else lines


class Redrawer:
    """Draws successive views over each other: the cursor goes back up, never further
    than the view drawn last (which ``fit`` keeps shorter than the terminal)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.drawn = 0

    def draw(self, lines: Sequence[str]) -> None:
        back = f"\x1b[{self.drawn}A\r" if self.drawn else ""
        # Each line is cleared to its end; the rest of the old view is cleared below.
        body = "".join(f"{line}\x1b[K\n" for line in lines)
        self.out.write(f"{back}{body}\x1b[J")
        self.out.flush()
        self.drawn = len(lines)
