"""``shipyard user create | list | rotate | revoke`` and ``shipyard audit``.

    shipyard user create alice --role deployer     # prints the key once
    shipyard user list
    shipyard user rotate alice                     # a new key; the old one stops at once
    shipyard user revoke alice
    shipyard audit [--user alice] [--limit 50]

Roles (docs/operations.md, "Users and roles"): viewer reads, deployer also deploys,
admin does everything. These commands call ShipyardCreateUser, ShipyardListUsers,
ShipyardRotateUserKey, ShipyardRevokeUser and ShipyardListAudit; all but the last need
an admin key.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from shipyard.cli import output, progress
from shipyard.cli.options import command
from shipyard.cli.subcommands import client_for as _client

ROLES = ("viewer", "deployer", "admin")


def add_user_commands(subparsers: Any, api: argparse.ArgumentParser) -> None:
    user = command(
        subparsers, "user", help="people's keys and their roles", example="shipyard user list"
    )
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = command(
        actions,
        "create",
        parents=[api],
        help="issue a key for a person",
        example="shipyard user create alice --role deployer",
    )
    create.add_argument("name", metavar="NAME", help="the person's user name, e.g. alice")
    create.add_argument(
        "--role", required=True, choices=ROLES, help="viewer reads, deployer deploys, admin all"
    )
    create.set_defaults(run=cmd_user_create)
    listing = command(
        actions,
        "list",
        parents=[api],
        help="list users, roles and key ids",
        example="shipyard user list --output json",
    )
    listing.set_defaults(run=cmd_user_list)
    rotate = command(
        actions,
        "rotate",
        parents=[api],
        help="replace a user's key (the old one stops at once)",
        example="shipyard user rotate alice",
    )
    rotate.add_argument("name", metavar="NAME", help="the user whose key is replaced")
    rotate.set_defaults(run=cmd_user_rotate)
    revoke = command(
        actions,
        "revoke",
        parents=[api],
        help="delete a user's keys",
        example="shipyard user revoke alice",
    )
    revoke.add_argument("name", metavar="NAME", help="the user whose keys are deleted")
    revoke.set_defaults(run=cmd_user_revoke)

    audit = command(
        subparsers,
        "audit",
        parents=[api],
        help="who changed what, when",
        example="shipyard audit --user alice --limit 20",
    )
    audit.add_argument("--user", metavar="NAME", help="only this user's actions")
    audit.add_argument("--limit", type=int, default=50, metavar="N", help="entries (default 50)")
    audit.set_defaults(run=cmd_audit)


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_key(answer: dict[str, Any], verb: str) -> None:
    print(f"{verb} user {answer['userName']} ({answer['role']})")
    print(f"aws_access_key_id = {answer['accessKeyId']}")
    print(f"aws_secret_access_key = {answer['secretAccessKey']}")
    print("The secret is shown only now: give it to the person over a private channel.")


def cmd_user_create(args: argparse.Namespace) -> int:
    body = {"userName": args.name, "role": args.role}
    _print_key(_client(args).call_extension("ShipyardCreateUser", body), "Created")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    found = _client(args).call_extension("ShipyardListUsers", {}).get("users", [])
    if output.wants_json(args):
        output.emit_json(found)
        return 0
    rows = [["USER", "ROLE", "ACCESS KEY ID", "CREATED"]]
    rows += [[u["userName"], u["role"], u["accessKeyId"], _when(u["created"])] for u in found]
    for line in (
        progress.table(rows) if found else ["no users (shipyard user create NAME --role ...)"]
    ):
        print(line)
    return 0


def cmd_user_rotate(args: argparse.Namespace) -> int:
    answer = _client(args).call_extension("ShipyardRotateUserKey", {"userName": args.name})
    _print_key(answer, "New key for")
    return 0


def cmd_user_revoke(args: argparse.Namespace) -> int:
    _client(args).call_extension("ShipyardRevokeUser", {"userName": args.name})
    print(f"Revoked user {args.name}: their keys no longer work")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"maxItems": max(1, min(args.limit, 1000))}
    if args.user:
        body["userName"] = args.user
    entries = _client(args).call_extension("ShipyardListAudit", body).get("entries", [])
    if output.wants_json(args):
        output.emit_json(entries)
        return 0
    rows = [["WHEN", "WHO", "ACTION", "SUBJECT"]]
    rows += [
        [_when(e["time"]), f"{e['principalKind']}:{e['principal']}", e["action"], e["subject"]]
        for e in entries
    ]
    for line in progress.table(rows) if entries else ["no audit entries"]:
        print(line)
    return 0
