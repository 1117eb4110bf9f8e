"""The console's routes under ``/console``, and ``GET /`` sending browsers there.

Every page but sign-in needs a live session (``sessions``); every POST needs the
session's CSRF token and this server's origin. Errors become a page saying what went
wrong in one sentence: an API error's message, or for anything unexpected a request id
(the traceback goes to the server log only).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from shipyard.console import format, sessions
from shipyard.console.upload import read_upload
from shipyard.errors import ApiError, DomainError
from shipyard.server.context import Services
from shipyard.server.wire import to_api_error

log = logging.getLogger("shipyard.console")
HERE = Path(__file__).parent

Page = Callable[["Console", Request, sessions.Session], Awaitable[Response]]


class Console:
    """What every page handler is given: the services and the template renderer."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters.update(
            when=format.when,
            ago=format.ago,
            duration=format.duration,
            script_json=format.script_json,
        )

    def page(
        self,
        name: str,
        session: sessions.Session | None,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            session=session, principal=session.principal if session else None, **values
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def error(self, session: sessions.Session | None, status: int, message: str) -> HTMLResponse:
        return self.page("error.html", session, status, message=message)


SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def signed_in(
    console: Console, handler: Page, *, change: bool = False, upload: bool = False
) -> Callable[..., Any]:
    """Wrap a page: a session is required (else sign in); a change also needs CSRF.
    An ``upload`` is a multipart form with a bundle (``request.state.upload``)."""

    async def endpoint(request: Request) -> Response:
        session = sessions.current(request, console.services)
        if session is None:
            target = "/console/login"
            if request.method == "GET" and request.url.path != "/console/login":
                target += "?expired=1" if request.cookies.get(sessions.COOKIE) else ""
            response: Response = RedirectResponse(target, 303)
            if request.cookies.get(sessions.COOKIE):
                sessions.clear_cookie(response)
            return response
        try:
            if change:
                form = await _read(console, request, upload)
                if not sessions.same_origin(request) or not sessions.csrf_ok(
                    session, form.get("csrf")
                ):
                    return console.error(session, 403, "This form has expired: reload the page.")
            return await handler(console, request, session)
        except ApiError as exc:
            return console.error(session, exc.status if exc.status >= 400 else 400, exc.message)
        except DomainError as exc:
            api = to_api_error(exc)
            return console.error(session, api.status, api.message)
        except Exception:
            request_id = str(uuid.uuid4())
            log.exception("console error (request %s)", request_id)
            return console.error(
                session, 500, f"Something went wrong; the server log has details ({request_id})."
            )

    return endpoint


async def _read(console: Console, request: Request, upload: bool) -> dict[str, str]:
    if not upload:
        return await sessions.read_form(request)
    request.state.upload = await read_upload(request, console.services.config.max_bundle_bytes)
    fields: dict[str, str] = request.state.upload.fields
    return fields


def console_routes(services: Services) -> list[BaseRoute]:
    from shipyard.console import pages  # the pages import the views, which import render

    console = Console(services)

    def route(path: str, handler: Page, method: str = "GET", upload: bool = False) -> Route:
        change = method == "POST"
        endpoint = signed_in(console, handler, change=change, upload=upload)
        return Route(path, endpoint, methods=[method])

    async def login_page(request: Request) -> Response:
        return await pages.login_page(console, request)

    async def login(request: Request) -> Response:
        return await pages.login(console, request)

    return [
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        route("/console/logout", pages.logout, "POST"),
        route("/console", pages.overview),
        route("/console/stream", pages.overview_stream),
        route("/console/deployments/{deployment_id}", pages.deployment),
        route("/console/deployments/{deployment_id}/stream", pages.deployment_stream),
        route("/console/deployments/{deployment_id}/{action}", pages.act, "POST"),
        route("/console/deploy", pages.deploy_form),
        route("/console/deploy", pages.deploy, "POST"),
        route("/console/deploy/upload", pages.deploy_upload, "POST", upload=True),
        route("/console/fleet", pages.fleet),
        route("/console/fleet.csv", pages.fleet_csv),
        route("/console/audit", pages.audit_page),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]


def browser_at_root(request: Request) -> bool:
    """``GET /`` from a browser (unsigned, asking for HTML): S3's ListBuckets is signed."""
    signed = "authorization" in request.headers or "X-Amz-Signature" in request.query_params
    return not signed and "text/html" in request.headers.get("accept", "")
