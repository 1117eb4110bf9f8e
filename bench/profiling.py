"""Sampling a server with py-spy, and reading the result.

``py_spy(pid, path)`` records collapsed stacks (``--format raw``) while its block runs.
Run this file on such a recording to see where the time went:

    .venv/bin/python bench/profiling.py /tmp/profile.deploy.sqlite.txt [--top 30]

It prints, per Shipyard function, the share of samples whose innermost Shipyard
frame it is (its own time plus the libraries it called) and its inclusive share.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

OWN_PACKAGE = "shipyard/"


@contextlib.contextmanager
def py_spy(pid: int, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy (collapsed stacks in ``output``) for the block's length."""
    if output is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
    recorder = subprocess.Popen(
        [*command, "--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)  # py-spy attaches
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()


def shares(collapsed: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Per Shipyard frame: (share of samples where it is the innermost Shipyard frame,
    share of samples where it is on the stack)."""
    innermost: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        count = int(samples)
        total += count
        frames = [f for f in stack.split(";") if OWN_PACKAGE in f]
        key = frames[-1] if frames else "(outside Shipyard: event loop, HTTP, idle)"
        innermost[key] = innermost.get(key, 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    total = max(total, 1)
    return (
        {k: v / total for k, v in innermost.items()},
        {k: v / total for k, v in inclusive.items()},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Where a py-spy recording spent its time.")
    parser.add_argument("recording", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    innermost, inclusive = shares(args.recording)
    for title, table in (("innermost Shipyard frame", innermost), ("inclusive", inclusive)):
        print(f"-- {title}")
        for frame, share in sorted(table.items(), key=lambda item: -item[1])[: args.top]:
            print(f"{share * 100:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
