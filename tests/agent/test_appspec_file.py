"""Reading the appspec of an unpacked revision: the quick way (a regular file at the
root, opened without following links) and the general way (links resolved inside the
bundle) must agree on what is read and what is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.agent.appspec_file import AppSpecFileError, load

APPSPEC = "version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: run.sh\n"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    directory = tmp_path / "deployment-archive"
    directory.mkdir()
    (directory / "run.sh").write_text("#!/bin/sh\n")
    return directory


def scripts(archive: Path, filename: str = "appspec.yml") -> list[str]:
    return [script.location for script in load(archive, filename).scripts_for("AfterInstall")]


def test_a_regular_file_at_the_root_is_read(archive: Path) -> None:
    (archive / "appspec.yml").write_text(APPSPEC)
    assert scripts(archive) == ["run.sh"]


def test_line_ends_read_as_text_mode_reads_them(archive: Path) -> None:
    (archive / "appspec.yml").write_bytes(APPSPEC.replace("\n", "\r\n").encode())
    assert load(archive, "appspec.yml") == load_from_text(archive, APPSPEC)


def load_from_text(archive: Path, text: str) -> object:
    (archive / "plain.yml").write_text(text)
    return load(archive, "plain.yml")


def test_a_link_to_a_file_inside_the_bundle_is_followed(archive: Path) -> None:
    (archive / "conf").mkdir()
    (archive / "conf" / "real.yml").write_text(APPSPEC)
    (archive / "appspec.yml").symlink_to("conf/real.yml")
    assert scripts(archive) == ["run.sh"]


def test_a_link_out_of_the_bundle_is_not_read(archive: Path) -> None:
    (archive.parent / "outside.yml").write_text(APPSPEC)
    (archive / "appspec.yml").symlink_to("../outside.yml")
    with pytest.raises(AppSpecFileError, match="no AppSpec file in the revision"):
        load(archive, "appspec.yml")


def test_a_name_with_a_directory_is_resolved_inside(archive: Path) -> None:
    (archive / "conf").mkdir()
    (archive / "conf" / "appspec.yml").write_text(APPSPEC)
    assert scripts(archive, "conf/appspec.yml") == ["run.sh"]


def test_what_is_not_a_regular_file_is_passed_over(archive: Path) -> None:
    """A FIFO must not block the agent (it is never opened for reading in earnest), and
    a directory is no appspec either: the fallback names are tried next."""
    os.mkfifo(archive / "appspec.yml")
    (archive / "custom.yml").mkdir()
    (archive / "appspec.yaml").write_text(APPSPEC)
    assert scripts(archive, "custom.yml") == ["run.sh"]


def test_an_unreadable_or_invalid_appspec_is_named(archive: Path) -> None:
    (archive / "appspec.yml").write_bytes(b"version: 0.0\nos: \xff\n")
    with pytest.raises(AppSpecFileError, match=r"cannot read appspec\.yml"):
        load(archive, "appspec.yml")
    (archive / "appspec.yml").write_text("version: 1.0\nos: linux\n")
    with pytest.raises(AppSpecFileError, match=r"^appspec\.yml: "):
        load(archive, "appspec.yml")


def test_a_missing_revision_says_so(tmp_path: Path) -> None:
    with pytest.raises(AppSpecFileError, match="the revision is not on this host"):
        load(tmp_path / "gone", "appspec.yml")
