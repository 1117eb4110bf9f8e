"""The console's page handlers. Reads come from the store (the views and the fleet
report); every change runs the API operation as the signed-in person
(``server/dispatch.py``): the same role check, the same validation, the same audit."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from shipyard.console import fleet as fleet_report
from shipyard.console import live, sessions, upload, views
from shipyard.console.routes import Console
from shipyard.errors import ApiError
from shipyard.server import dispatch, permissions
from shipyard.server.alarm_watch import AlarmWatcher
from shipyard.server.context import Json
from shipyard.store import audit

Session = sessions.Session


async def _run(console: Console, session: Session, operation: str, body: Json) -> Json:
    return await dispatch.run_operation(console.services, session.principal, operation, body)


async def login_page(console: Console, request: Request) -> Response:
    if sessions.current(request, console.services) is not None:
        return RedirectResponse("/console", 303)
    expired = request.query_params.get("expired") == "1"
    note = "Your session has ended: sign in again." if expired else ""
    return console.page("login.html", None, message=note)


async def login(console: Console, request: Request) -> Response:
    if not sessions.same_origin(request):
        return console.error(None, 403, "Sign in from this server's own page.")
    try:
        form = await sessions.read_form(request)
    except ApiError as exc:
        return console.error(None, exc.status, exc.message)
    key_id, secret = form.get("access_key_id", ""), form.get("secret", "")
    try:
        token, _session = sessions.sign_in(console.services, key_id, secret)
    except sessions.SignInFailed as exc:
        return console.page("login.html", None, 401, message=str(exc))
    response = RedirectResponse("/console", 303)
    sessions.set_cookie(response, console.services, token)
    return response


async def logout(console: Console, _request: Request, session: Session) -> Response:
    sessions.sign_out(console.services, session)
    response = RedirectResponse("/console/login", 303)
    sessions.clear_cookie(response)
    return response


def _firing(console: Console) -> list[tuple[str, str]]:
    for worker in console.services.workers:
        if isinstance(worker, AlarmWatcher):
            readings = worker.last_readings.items()
            return [(name, r.message) for name, r in sorted(readings) if r.state == "ALARM"]
    return []


async def overview(console: Console, request: Request, session: Session) -> Response:
    data = views.overview(console.services, _firing(console))
    return console.page("overview.html", session, **data)


def _still_signed_in(console: Console, request: Request) -> Any:
    return lambda: sessions.current(request, console.services) is not None


async def overview_stream(console: Console, request: Request, _session: Session) -> Response:
    events = live.overview_events(console.services, _still_signed_in(console, request))
    return StreamingResponse(events, media_type="text/event-stream", headers=_STREAM_HEADERS)


_STREAM_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}


def _stored(console: Console, deployment_id: str) -> Any:
    stored = console.services.runner.current(deployment_id)
    if stored is None:
        raise ApiError("DeploymentDoesNotExistException", f"No deployment {deployment_id}", 404)
    return stored


async def deployment(console: Console, request: Request, session: Session) -> Response:
    stored = _stored(console, request.path_params["deployment_id"])
    view = views.deployment_view(console.services, stored, session.principal)
    return console.page("deployment.html", session, view=view)


async def deployment_stream(console: Console, request: Request, session: Session) -> Response:
    deployment_id = request.path_params["deployment_id"]
    _stored(console, deployment_id)
    last = request.headers.get("last-event-id", "")
    events = live.deployment_events(
        console.services,
        deployment_id,
        session.principal,
        _still_signed_in(console, request),
        int(last) if last.isdigit() else 0,
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=_STREAM_HEADERS)


async def act(console: Console, request: Request, session: Session) -> Response:
    action = views.ACTIONS.get(request.path_params["action"])
    if action is None:
        return console.error(session, 404, "No such action.")
    stored = _stored(console, request.path_params["deployment_id"])
    answer = await _run(console, session, action.operation, views.action_body(action, stored))
    goes_to = answer.get("rollbackDeploymentId") or stored.state.deployment_id
    return RedirectResponse(f"/console/deployments/{goes_to}", 303)


async def deploy_form(console: Console, request: Request, session: Session) -> Response:
    return await _deploy_page(console, session, dict(request.query_params), "")


async def _deploy_page(
    console: Console, session: Session, chosen: dict[str, Any], message: str, status: int = 200
) -> Response:
    apps = (await _run(console, session, "ListApplications", {}))["applications"]
    app = chosen.get("application") or (apps[0] if apps else "")
    groups: list[str] = []
    revisions: list[dict[str, Any]] = []
    if app in apps:
        body = {"applicationName": app}
        groups = (await _run(console, session, "ListDeploymentGroups", body))["deploymentGroups"]
        listing = {**body, "sortBy": "registerTime", "sortOrder": "descending"}
        revisions = (await _run(console, session, "ListApplicationRevisions", listing))["revisions"]
    configs = (await _run(console, session, "ListDeploymentConfigs", {}))["deploymentConfigsList"]
    return console.page(
        "deploy.html",
        session,
        status,
        apps=apps,
        app=app,
        groups=groups,
        revisions=[(json.dumps(r), views.revision_label(r)) for r in revisions],
        configs=sorted(configs),
        chosen=chosen,
        message=message,
        allowed=permissions.allowed(session.principal, "CreateDeployment"),
    )


def _deployment_body(form: dict[str, str]) -> Json:
    body: Json = {
        "applicationName": form.get("application", ""),
        "deploymentGroupName": form.get("group", ""),
    }
    if form.get("config"):
        body["deploymentConfigName"] = form["config"]
    if form.get("description"):
        body["description"] = form["description"][:1000]
    return body


async def _create(console: Console, session: Session, form: dict[str, str], body: Json) -> Response:
    try:
        answer = await _run(console, session, "CreateDeployment", body)
    except ApiError as exc:
        return await _deploy_page(console, session, form, exc.message, 400)
    return RedirectResponse(f"/console/deployments/{answer['deploymentId']}", 303)


async def deploy(console: Console, request: Request, session: Session) -> Response:
    form = {k: v for k, v in (await sessions.read_form(request)).items() if k != "csrf"}
    body = _deployment_body(form)
    try:
        body["revision"] = json.loads(form.get("revision", ""))
    except ValueError:
        return await _deploy_page(console, session, form, "Choose a registered revision.", 400)
    return await _create(console, session, form, body)


async def deploy_upload(console: Console, request: Request, session: Session) -> Response:
    """Store the uploaded zip, register it as a revision, then deploy it."""
    sent: upload.UploadForm = request.state.upload
    form = {k: v for k, v in sent.fields.items() if k != "csrf"}
    application = form.get("application", "")
    try:
        if not permissions.allowed(session.principal, permissions.PUSH_BUNDLE):
            denied = permissions.denial(session.principal, permissions.PUSH_BUNDLE)
            raise ApiError("AccessDeniedException", denied, 403)
        await _run(console, session, "GetApplication", {"applicationName": application})
        revision = await upload.checked_and_stored(console.services, application, sent.data)
    except upload.BundleRefused as exc:
        return await _deploy_page(console, session, form, str(exc), 400)
    except ApiError as exc:
        return await _deploy_page(console, session, form, exc.message, exc.status)
    register = {
        "applicationName": application,
        "revision": revision,
        "description": f"uploaded in the console: {sent.filename}"[:1000],
    }
    await _run(console, session, "RegisterApplicationRevision", register)
    return await _create(console, session, form, {**_deployment_body(form), "revision": revision})


def _filters(request: Request) -> fleet_report.Filters:
    q = request.query_params
    return fleet_report.Filters(
        tag=q.get("tag", "")[:300], group=q.get("group", "")[:300], status=q.get("status", "")
    )


async def fleet(console: Console, request: Request, session: Session) -> Response:
    filters = _filters(request)
    data = fleet_report.report(console.services, filters)
    return console.page(
        "fleet.html", session, filters=filters, statuses=fleet_report.STATUSES, **data
    )


async def fleet_csv(console: Console, request: Request, _session: Session) -> Response:
    data = fleet_report.report(console.services, _filters(request))
    return Response(
        fleet_report.as_csv(data["hosts"]),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="shipyard-fleet.csv"'},
    )


async def audit_page(console: Console, request: Request, session: Session) -> Response:
    with console.services.db.tx() as conn:
        entries = audit.entries(conn, limit=200)
    return console.page("audit.html", session, entries=entries)
