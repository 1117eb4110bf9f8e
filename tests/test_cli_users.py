"""``shipyard user`` and ``shipyard audit`` as real subprocesses against a real server."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import LiveServer
from tests.test_cli import assert_one_line_error, cli_env, shipyard


def test_user_commands_and_the_audit(live_server: LiveServer, tmp_path: Path) -> None:
    env = cli_env(live_server)
    created = shipyard("user", "create", "alice", "--role", "deployer", env=env)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Created user alice (deployer)\n")
    key_id = re.search(r"aws_access_key_id = (AKSU\w+)", created.stdout)
    secret = re.search(r"aws_secret_access_key = (\S+)", created.stdout)
    assert key_id and secret

    listed = shipyard("user", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["USER", "ROLE", "ACCESS", "KEY", "ID", "CREATED"]
    assert row.split()[:3] == ["alice", "deployer", key_id.group(1)]

    # Alice's own key: she may read the audit list but not create users.
    alice = tmp_path / "alice"
    alice.mkdir()
    (alice / "credentials").write_text(
        f"[default]\naws_access_key_id = {key_id.group(1)}\n"
        f"aws_secret_access_key = {secret.group(1)}\n"
    )
    as_alice = cli_env(live_server, alice)
    refused = shipyard("user", "create", "mallory", "--role", "admin", env=as_alice)
    assert_one_line_error(refused, 4, "AccessDeniedException", "codedeploy:ShipyardCreateUser")
    audit = shipyard("audit", env=as_alice)
    assert audit.returncode == 0, audit.stderr
    lines = audit.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "WHO", "ACTION", "SUBJECT"]
    assert lines[1].split()[-3:] == ["admin:admin", "ShipyardCreateUser", "user/alice"]

    rotated = shipyard("user", "rotate", "alice", env=env)
    assert rotated.returncode == 0 and "New key for user alice (deployer)" in rotated.stdout
    stale = shipyard("audit", env=as_alice)
    assert_one_line_error(stale, 4, "UnrecognizedClientException")
    revoked = shipyard("user", "revoke", "alice", env=env)
    assert revoked.stdout == "Revoked user alice: their keys no longer work\n"
    assert shipyard("user", "list", env=env).stdout.startswith("no users")
    assert_one_line_error(shipyard("user", "revoke", "alice", env=env), 4, "UserNotFoundException")
    assert_one_line_error(shipyard("user", "create", "x", "--role", "boss", env=env), 2, "--role")
