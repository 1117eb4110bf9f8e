"""``shipyard validate DIR`` (and push's check): the whole bundle against the agent's
rules, refused with the file and line, warnings apart."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import LiveServer
from tests.test_cli import assert_one_line_error, cli_env, shipyard

HEADER = "version: 0.0\nos: linux\n"
SCRIPT = "#!/bin/sh\necho started\n"


def bundle(root: Path, appspec: str, files: dict[str, tuple[str, int]] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "appspec.yml").write_text(HEADER + appspec)
    for name, (text, mode) in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        path.chmod(mode)
    return root


START = "hooks:\n  ApplicationStart:\n    - location: start.sh\n"


@pytest.mark.parametrize(
    ("appspec", "files", "expected"),
    [
        (
            "hook:\n  ApplicationStart: []\n",
            {},
            "appspec.yml:3: unknown key 'hook' (did you mean 'hooks'?)",
        ),
        ("Files: []\n", {}, "appspec.yml:3: unknown key 'Files' (did you mean 'files'?)"),
        (
            "hooks:\n  AfterInstal:\n    - location: start.sh\n",
            {"start.sh": (SCRIPT, 0o755)},
            "appspec.yml:4: unknown hook event 'AfterInstal' (did you mean 'AfterInstall'?)",
        ),
        (START, {}, "appspec.yml: hook script 'start.sh' is not in the bundle"),
        (
            "files:\n  - source: site\n    destination: /srv/www\n",
            {},
            "appspec.yml: files source 'site' is not in the bundle",
        ),
        (
            START,
            {"start.sh": ("#!/bin/sh\r\necho started\r\n", 0o755)},
            "start.sh:1: Windows (CRLF) line endings",
        ),
    ],
    ids=["hook", "Files", "AfterInstal", "missing script", "missing source", "CRLF"],
)
def test_validate_refuses_with_the_file_and_line(
    tmp_path: Path, appspec: str, files: dict[str, tuple[str, int]], expected: str
) -> None:
    source = bundle(tmp_path / "app", appspec, files)
    result = shipyard("validate", str(source), env=cli_env())
    assert result.returncode == 2, result
    assert f"{source}/{expected}" in result.stdout
    assert "[error]" in result.stdout


def test_a_script_that_is_not_executable_is_a_warning(tmp_path: Path) -> None:
    source = bundle(tmp_path / "app", START, {"start.sh": (SCRIPT, 0o644)})
    result = shipyard("validate", str(source), env=cli_env())
    assert result.returncode == 0, result
    assert f"{source}/start.sh: not executable" in result.stdout
    assert "[warning]" in result.stdout


def test_a_valid_bundle_passes_and_json_lists_every_problem(tmp_path: Path) -> None:
    good = bundle(tmp_path / "good", START, {"start.sh": (SCRIPT, 0o755)})
    result = shipyard("validate", str(good), env=cli_env())
    assert (result.returncode, result.stdout) == (0, "")
    assert "valid" in result.stderr
    bad = bundle(tmp_path / "bad", "hook: {}\nFiles: []\n")
    listed = shipyard("validate", str(bad), "--output", "json", env=cli_env())
    assert listed.returncode == 2
    problems = json.loads(listed.stdout)
    assert [(p["line"], p["fatal"]) for p in problems] == [(3, True), (4, True)]


def test_push_refuses_a_bundle_with_the_file_and_line(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live_server.client().create_application(applicationName="web")
    source = bundle(tmp_path / "app", "hook:\n  ApplicationStart: []\nFiles: []\n")
    result = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "bundles",
        env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(result, 2, f"{source}/appspec.yml:3: unknown key 'hook'", "1 more")


@pytest.mark.parametrize(("key", "mode"), [("web/v1.tgz", "r:gz"), ("web/v1.tar", "r:")])
def test_push_builds_the_bundle_type_its_key_names(
    live_server: LiveServer, tmp_path: Path, key: str, mode: str
) -> None:
    live_server.client().create_application(applicationName="web")
    source = bundle(tmp_path / "app", START, {"start.sh": (SCRIPT, 0o755)})
    result = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "bundles",
        "--key", key, "--output", "json", env=cli_env(live_server),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    revision = json.loads(result.stdout)
    assert revision["s3Location"]["bundleType"] == key.rsplit(".", 1)[1]
    body = live_server.client("s3").get_object(Bucket="bundles", Key=key)["Body"].read()
    (tmp_path / "pushed").write_bytes(body)
    with tarfile.open(tmp_path / "pushed", mode) as archive:  # type: ignore[call-overload]
        assert archive.getmember("start.sh").mode & 0o777 == 0o755
        assert "appspec.yml" in archive.getnames()
    clash = shipyard(
        "push", "--application", "web", "--source", str(source), "--bucket", "bundles",
        "--key", "web/v2.tgz", "--bundle-type", "zip", env=cli_env(live_server),
    )  # fmt: skip
    assert_one_line_error(clash, 2, "names a tgz bundle but --bundle-type is zip")
