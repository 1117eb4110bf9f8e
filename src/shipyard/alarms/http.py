"""An HTTP alarm: ``GET url`` must answer ``expect_status`` (200 unless set).

Any other answer is ALARM, and so is no answer at all: a refused connection, a
timeout, a TLS failure or a reset. An HTTP check watches a service's health endpoint,
and a service that cannot be reached is exactly the unhealthy state it is there to
catch, so these are not treated as "the alarm state cannot be read" (UNKNOWN), which
``ignorePollAlarmFailure`` would let a deployment carry on through.

Redirects are not followed: the status checked is the one the URL itself answers.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Any

from shipyard.alarms import AlarmDefinition, AlarmReading


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError carrying the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirects)


def evaluate(definition: AlarmDefinition, timeout: float) -> AlarmReading:
    limit = timeout if definition.timeout is None else min(timeout, definition.timeout)
    request = urllib.request.Request(definition.url, headers={"User-Agent": "shipyard-alarm"})
    try:
        with _OPENER.open(request, timeout=limit) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        return AlarmReading("ALARM", f"GET {definition.url} failed: {reason}")
    if status != definition.expect_status:
        return AlarmReading(
            "ALARM", f"GET {definition.url} answered {status}, expected {definition.expect_status}"
        )
    return AlarmReading("OK", f"GET {definition.url} answered {status}")
