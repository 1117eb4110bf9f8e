"""Who is signed in to the console: a session cookie, checked on every request.

Signing in checks an access key id and its secret server-side; the browser keeps only a
random session token (cookie ``shipyard_session``: HttpOnly, SameSite=Strict, Secure
under TLS, path /console), stored hashed. Each request looks the session up and then the
key it was opened with, so a revoked or rotated key ends its sessions at once. Every
change is a POST carrying the session's CSRF token, from this server's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import ApiError
from shipyard.server.context import Principal, Services
from shipyard.store import console_sessions, credentials

COOKIE = "shipyard_session"
PATH = "/console"
SIGNED_IN_KINDS = ("admin", "user")
MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    token_hash: str


class SignInFailed(Exception):
    pass


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(services: Services, key_id: str, secret: str) -> tuple[str, Session]:
    """Check the key and open a session; returns the cookie's token and the session."""
    db = services.db
    with db.tx() as conn:
        found = credentials.lookup_key(conn, db.secret_box, key_id.strip()[:64])
    stored = found[0] if found else "x" * 40
    matches = hmac.compare_digest(stored.encode(), secret.strip().encode())
    if found is None or not matches or found[1] not in SIGNED_IN_KINDS:
        raise SignInFailed("The access key id or secret is wrong.")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = services.clock()
    expires = now + services.config.console_session_seconds
    with db.tx() as conn:
        console_sessions.open_session(conn, _hash(token), key_id.strip(), csrf, now, expires)
    return token, Session(Principal(found[1], found[2], found[3]), csrf, _hash(token))


def current(request: Request, services: Services) -> Session | None:
    """The request's live session, or None (none, expired, or its key revoked)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    db = services.db
    with db.tx() as conn:
        found = console_sessions.find(conn, _hash(token))
        if found is None:
            return None
        key_id, csrf, expires = found
        if expires <= services.clock():
            console_sessions.close(conn, _hash(token))
            return None
        key = credentials.lookup_key(conn, db.secret_box, key_id)
    if key is None or key[1] not in SIGNED_IN_KINDS:
        return None
    return Session(Principal(key[1], key[2], key[3]), csrf, _hash(token))


def sign_out(services: Services, session: Session) -> None:
    with services.db.tx() as conn:
        console_sessions.close(conn, session.token_hash)


def set_cookie(response: Response, services: Services, token: str) -> None:
    config = services.config
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(config.console_session_seconds),
        path=PATH,
        httponly=True,
        secure=bool(config.tls_cert) or config.url.startswith("https://"),
        samesite="strict",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """A POST whose Origin (browsers send it) is not this server's is refused."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def csrf_ok(session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf.encode(), str(given).encode())


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, read once under a cap (kept for the page handler)."""
    cached: dict[str, str] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_FORM_BYTES:
            raise ApiError("InvalidInputException", "The form is too large.", 413)
    form = dict(parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True))
    request.state.form = form
    return form
