"""The agent's log: every line once on stderr and once in the file, as the standard
formatter would have written it."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.agent.logs import LOG_FILE, configure_logging

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) \[MainThread\] (.*)")


@pytest.fixture
def agent_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    # configure_logging sets process-wide switches: put them back for the other tests.
    for name in ("_srcfile", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    logger = logging.getLogger("shipyard.agent")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    monkeypatch.setattr(logger, "level", logger.level)
    yield logger
    for handler in logger.handlers:
        handler.close()


def test_each_line_goes_to_stderr_and_the_file_once(
    agent_logger: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(tmp_path / "logs", verbose=False)
    agent_logger.info("%s: running (command %s)", "Install", "42")
    agent_logger.warning("command %s: Failed", "42")
    agent_logger.debug("not shown without verbose")
    expected = [("INFO", "Install: running (command 42)"), ("WARNING", "command 42: Failed")]
    in_file = (tmp_path / "logs" / LOG_FILE).read_text().splitlines()
    on_stderr = capsys.readouterr().err.splitlines()
    for lines in (in_file, on_stderr):
        matched = [LINE.fullmatch(line) for line in lines]
        assert [
            m.groups() if m else line for m, line in zip(matched, lines, strict=True)
        ] == expected
    assert in_file == on_stderr  # the same text: one format per record


def test_stderr_only_when_the_file_cannot_be_opened(
    agent_logger: logging.Logger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs").write_text("a file where the log directory should be")
    configure_logging(tmp_path / "logs", verbose=True)
    agent_logger.debug("still logged")
    err = capsys.readouterr().err
    assert "logging to stderr only" in err and "still logged" in err
