"""A PromQL alarm: an instant query against Prometheus's HTTP API.

``GET <url>/api/v1/query?query=<expr>`` must answer ``status: success`` with a
``vector`` or ``scalar`` result. The alarm is in ALARM when a sample's value is
non-zero, or above ``threshold`` when one is given; an empty vector is OK (so
``rate(errors[1m]) > 5`` reads naturally). NaN samples (0/0 with no traffic) never fire.

When the state cannot be read (Prometheus unreachable, an error answer, a query that
is not an instant vector or scalar, a body that is not the API's JSON) the reading is
UNKNOWN with a message saying why; the deployment's ``ignorePollAlarmFailure`` decides
what that means.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from shipyard.alarms import AlarmDefinition, AlarmReading

MAX_LISTED_SAMPLES = 3  # firing series named in the message


def evaluate(definition: AlarmDefinition, timeout: float) -> AlarmReading:
    url = query_url(definition.prometheus_url, definition.query)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        return AlarmReading("UNKNOWN", _error_answer(definition, exc))
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return AlarmReading(
            "UNKNOWN", f"cannot reach Prometheus at {definition.prometheus_url}: {reason}"
        )
    try:
        answer = json.loads(body)
        return _reading(definition, answer)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return AlarmReading(
            "UNKNOWN",
            f"{definition.prometheus_url} did not answer like the Prometheus query API",
        )


def query_url(base: str, query: str) -> str:
    return f"{base.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"


def _error_answer(definition: AlarmDefinition, exc: urllib.error.HTTPError) -> str:
    """Prometheus explains a refused query in the body of its 4xx/5xx answer."""
    try:
        answer = json.loads(exc.read())
        detail = f"{answer['errorType']}: {answer['error']}"
    except (ValueError, TypeError, KeyError, OSError):
        detail = f"HTTP {exc.code} {exc.reason}"
    return f"Prometheus at {definition.prometheus_url} refused the query: {detail}"


def _reading(definition: AlarmDefinition, answer: Any) -> AlarmReading:
    if answer.get("status") != "success":
        detail = answer.get("error") or answer.get("status")
        return AlarmReading("UNKNOWN", f"Prometheus answered {detail!r}")
    data = answer["data"]
    kind = data["resultType"]
    if kind == "scalar":
        samples = [("scalar", float(data["result"][1]))]
    elif kind == "vector":
        samples = [(_series(item["metric"]), float(item["value"][1])) for item in data["result"]]
    else:
        return AlarmReading(
            "UNKNOWN",
            f"the query returns a {kind}; an alarm needs an instant vector or a scalar",
        )
    firing = [(series, value) for series, value in samples if _fires(value, definition.threshold)]
    if not firing:
        return AlarmReading("OK", f"{len(samples)} sample(s), none firing")
    rule = "non-zero" if definition.threshold is None else f"above {definition.threshold:g}"
    listed = ", ".join(f"{series} = {value:g}" for series, value in firing[:MAX_LISTED_SAMPLES])
    more = len(firing) - MAX_LISTED_SAMPLES
    if more > 0:
        listed += f" and {more} more"
    return AlarmReading("ALARM", f"{definition.query} is {rule}: {listed}")


def _fires(value: float, threshold: float | None) -> bool:
    if math.isnan(value):
        return False
    return value != 0 if threshold is None else value > threshold


def _series(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name
