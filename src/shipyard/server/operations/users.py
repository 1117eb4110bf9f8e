"""Users and the audit list: ShipyardCreateUser / ListUsers / RotateUserKey /
RevokeUser (admin) and ShipyardListAudit (viewer).

A user is a person with a role (server/permissions.py) and one access key. The secret
is in the answer of create and rotate only; the store keeps it sealed.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import ApiError
from shipyard.server import permissions, validate
from shipyard.server.context import Call, Handler, Json
from shipyard.store import audit, users

INVALID = "InvalidInputException"
MAX_AUDIT_PAGE = 1000


def _user_name(call: Call) -> str:
    value = validate.required(call.body, "userName", INVALID)
    return validate.name(value, INVALID, "userName")


def _known(call: Call, name: str) -> None:
    with call.services.db.tx() as conn:
        if not users.exists(conn, name):
            raise ApiError("UserNotFoundException", f"No user named {name!r}")


def _key(name: str, role: str, key: tuple[str, str]) -> Json:
    key_id, secret = key
    return {"userName": name, "role": role, "accessKeyId": key_id, "secretAccessKey": secret}


def create_user(call: Call) -> Json:
    name = _user_name(call)
    role = validate.enum(call.body.get("role"), permissions.ROLES, INVALID, "role")
    db = call.services.db
    with db.tx() as conn:
        if users.exists(conn, name):
            raise ApiError("UserAlreadyExistsException", f"A user named {name!r} exists already")
        key = users.create(conn, db.secret_box, name, role, call.now())
    return _key(name, role, key)


def list_users(call: Call) -> Json:
    with call.services.db.tx() as conn:
        return {"users": users.listed(conn)}


def rotate_user_key(call: Call) -> Json:
    name = _user_name(call)
    _known(call, name)
    db = call.services.db
    with db.tx() as conn:
        role = users.role(conn, name) or ""
        key = users.rotate(conn, db.secret_box, name, call.now())
    return _key(name, role, key)


def revoke_user(call: Call) -> Json:
    name = _user_name(call)
    _known(call, name)
    with call.services.db.tx() as conn:
        users.revoke(conn, name)
    return {}


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(INVALID, f"{what} must be an integer from {low} to {high}")
    return value


def list_audit(call: Call) -> Json:
    body = call.body
    limit = _int(body.get("maxItems", 100), "maxItems", 1, MAX_AUDIT_PAGE)
    before = body.get("beforeId")
    before_id = None if before is None else _int(before, "beforeId", 1, 2**62)
    principal = body.get("userName")
    if principal is not None:
        principal = validate.name(principal, INVALID, "userName")
    with call.services.db.tx() as conn:
        rows = audit.entries(conn, limit=limit, before_id=before_id, principal=principal)
    answer: Json = {"entries": rows}
    if len(rows) == limit:
        answer["nextBeforeId"] = rows[-1]["id"]
    return answer


OPERATIONS: dict[str, Handler] = {
    "ShipyardCreateUser": create_user,
    "ShipyardListUsers": list_users,
    "ShipyardRotateUserKey": rotate_user_key,
    "ShipyardRevokeUser": revoke_user,
    "ShipyardListAudit": list_audit,
}
