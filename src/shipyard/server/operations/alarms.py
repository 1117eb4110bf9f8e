"""Shipyard's alarm extension operations: ShipyardPutAlarm / GetAlarm / ListAlarms /
DeleteAlarm (admin only, like every API operation).

A deployment group's ``alarmConfiguration`` names alarms; these operations define
what a name means. ``ShipyardPutAlarm`` takes exactly one check::

    {"alarmName": "errors",
     "prometheus": {"url": "http://prom:9090", "query": "app_errors", "threshold": 0},
     "bakeSeconds": 60}
    {"alarmName": "health", "http": {"url": "https://app/health", "expectStatus": 200,
     "timeoutSeconds": 5}}

and replaces any earlier definition of that name. Deleting an alarm that groups still
name is allowed; deployments then read it as UNKNOWN (see ``server.alarm_watch``).
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from shipyard.alarms import AlarmDefinition, to_document
from shipyard.errors import ApiError
from shipyard.server.context import Call, Handler, Json
from shipyard.store import alarms as store

INVALID = "InvalidAlarmConfigException"
MAX_NAME = 255
MAX_QUERY = 10_000
MAX_URL = 2048
MAX_BAKE_SECONDS = 86_400
MAX_CHECK_TIMEOUT = 60.0

_PUT_MEMBERS = {"alarmName", "prometheus", "http", "bakeSeconds"}
_PROMETHEUS_MEMBERS = {"url", "query", "threshold"}
_HTTP_MEMBERS = {"url", "expectStatus", "timeoutSeconds"}


def _alarm_name(body: dict[str, Any], exception: str) -> str:
    value = body.get("alarmName")
    if value is None or value == "":
        raise ApiError(exception, "alarmName is required")
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise ApiError(exception, f"alarmName must be a string of 1-{MAX_NAME} characters")
    return value


def _structure(value: Any, what: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(INVALID, f"{what} must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ApiError(INVALID, f"{what} has unknown members {unknown}; allowed: {sorted(allowed)}")
    return value


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise ApiError(INVALID, f"{what} must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(INVALID, f"{what} must be an http(s) URL with a host; got {value!r}")
    return value


def _number(value: Any, what: str, bounds: tuple[float, float] | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(INVALID, f"{what} must be a number; got {value!r}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        low, high = bounds
        raise ApiError(INVALID, f"{what} must be between {low:g} and {high:g}; got {value!r}")
    return float(value)


def _prometheus(name: str, value: Any, bake: float) -> AlarmDefinition:
    check = _structure(value, "prometheus", _PROMETHEUS_MEMBERS)
    query = check.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        raise ApiError(INVALID, f"prometheus.query must be a PromQL expression (1-{MAX_QUERY})")
    threshold = check.get("threshold")
    return AlarmDefinition(
        name=name,
        kind="prometheus",
        prometheus_url=_url(check.get("url"), "prometheus.url"),
        query=query,
        threshold=None if threshold is None else _number(threshold, "prometheus.threshold"),
        bake_seconds=bake,
    )


def _http(name: str, value: Any, bake: float) -> AlarmDefinition:
    check = _structure(value, "http", _HTTP_MEMBERS)
    status = check.get("expectStatus", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ApiError(INVALID, f"http.expectStatus must be an HTTP status 100-599; got {status!r}")
    timeout = check.get("timeoutSeconds")
    return AlarmDefinition(
        name=name,
        kind="http",
        url=_url(check.get("url"), "http.url"),
        expect_status=status,
        timeout=None
        if timeout is None
        else _number(timeout, "http.timeoutSeconds", (0.1, MAX_CHECK_TIMEOUT)),
        bake_seconds=bake,
    )


def definition_from_request(body: dict[str, Any]) -> AlarmDefinition:
    """The validated definition a ShipyardPutAlarm request describes."""
    _structure(body, "the request", _PUT_MEMBERS)
    name = _alarm_name(body, INVALID)
    raw_bake = body.get("bakeSeconds")
    bake = 0.0 if raw_bake is None else _number(raw_bake, "bakeSeconds", (0, MAX_BAKE_SECONDS))
    given = [kind for kind in ("prometheus", "http") if body.get(kind) is not None]
    if len(given) != 1:
        raise ApiError(INVALID, "give exactly one check: prometheus or http")
    if given[0] == "prometheus":
        return _prometheus(name, body["prometheus"], bake)
    return _http(name, body["http"], bake)


def put_alarm(call: Call) -> Json:
    definition = definition_from_request(call.body)
    with call.services.db.tx() as conn:
        store.put_alarm(conn, definition, call.now())
    return {}


def get_alarm(call: Call) -> Json:
    name = _alarm_name(call.body, "InvalidInputException")
    with call.services.db.tx() as conn:
        definition = store.get_alarm(conn, name)
    if definition is None:
        raise ApiError("AlarmDoesNotExistException", f"No alarm named {name!r}")
    return {"alarm": to_document(definition)}


def list_alarms(call: Call) -> Json:
    with call.services.db.tx() as conn:
        found = store.list_alarms(conn)
    return {"alarms": [to_document(definition) for definition in found]}


def delete_alarm(call: Call) -> Json:
    name = _alarm_name(call.body, "InvalidInputException")
    with call.services.db.tx() as conn:
        deleted = store.delete_alarm(conn, name)
    if not deleted:
        raise ApiError("AlarmDoesNotExistException", f"No alarm named {name!r}")
    return {}


OPERATIONS: dict[str, Handler] = {
    "ShipyardPutAlarm": put_alarm,
    "ShipyardGetAlarm": get_alarm,
    "ShipyardListAlarms": list_alarms,
    "ShipyardDeleteAlarm": delete_alarm,
}
