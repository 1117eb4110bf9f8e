"""Following a deployment: what Ctrl-C says, and hook output streamed whole lines once."""

from __future__ import annotations

import io
from typing import Any

from shipyard.cli import following
from shipyard.cli.client import EXIT_INTERRUPTED


def test_ctrl_c_says_what_goes_on_and_how_to_come_back() -> None:
    for what in ("deployment", "rollback"):
        error = following.interrupted("d-ABCDEFGHI", what)
        assert error.exit_code == EXIT_INTERRUPTED
        assert error.message == (
            f"stopped following d-ABCDEFGHI; the {what} goes on on the server "
            "(re-attach: shipyard status d-ABCDEFGHI --watch; stop it: shipyard stop d-ABCDEFGHI)"
        )


class Logs:
    """Stands in for the client: the log of web-1's AfterInstall grows between polls."""

    def __init__(self) -> None:
        self.log = ""

    def call_extension(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        assert operation == following.LOG_OPERATION
        return {"events": [{"lifecycleEventName": "AfterInstall", "log": self.log}]}


def test_streamed_output_is_printed_once_in_whole_lines() -> None:
    logs, out = Logs(), io.StringIO()
    tail = following.LogTail(logs, "d-ABCDEFGHI", out)  # type: ignore[arg-type]
    running = [
        {"instanceTarget": {"targetId": "web-1", "lifecycleEvents": [{"status": "InProgress"}]}}
    ]
    pending = [
        {"instanceTarget": {"targetId": "web-2", "lifecycleEvents": [{"status": "Pending"}]}}
    ]
    logs.log = "one\ntw"
    tail.poll(running + pending)
    logs.log = "one\ntwo\nthree\n"
    tail.poll(running)
    tail.poll(running)
    assert out.getvalue() == (
        "web-1 AfterInstall| one\nweb-1 AfterInstall| two\nweb-1 AfterInstall| three\n"
    )
