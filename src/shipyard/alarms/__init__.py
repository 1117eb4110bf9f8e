"""Alarms defined in Shipyard, and reading their state.

An alarm is a named check a deployment group's ``alarmConfiguration`` refers to:

- ``prometheus``: a PromQL expression evaluated against a Prometheus server; it is in
  ALARM when the query returns a sample with a non-zero value (or, when ``threshold`` is
  given, a sample above it). See ``shipyard.alarms.prometheus``.
- ``http``: a GET whose answer must carry ``expect_status``. See ``shipyard.alarms.http``.

``evaluate`` reads one alarm with blocking I/O (urllib); the server calls it in a thread.
It never raises: whatever goes wrong comes back as a reading with a readable message.
The stored form of a definition (``to_document`` / ``from_document``) is the shape the
``ShipyardGetAlarm`` operation answers with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger("shipyard.alarms")

AlarmKind = Literal["prometheus", "http"]
AlarmState = Literal["OK", "ALARM", "UNKNOWN"]
DEFAULT_EXPECT_STATUS = 200


@dataclass(frozen=True)
class AlarmDefinition:
    name: str
    kind: AlarmKind
    # prometheus
    prometheus_url: str = ""
    query: str = ""
    threshold: float | None = None  # None: any non-zero sample is an alarm
    # http
    url: str = ""
    expect_status: int = DEFAULT_EXPECT_STATUS
    timeout: float | None = None  # the check's own limit; None: the caller's
    # After every host succeeded, the deployment waits this long (Baking) watching it.
    bake_seconds: float = 0


@dataclass(frozen=True)
class AlarmReading:
    state: AlarmState
    message: str


Evaluator = Callable[[AlarmDefinition, float], AlarmReading]


def _evaluators() -> dict[str, Evaluator]:
    # Imported here: the check modules use this module's types.
    from shipyard.alarms import http, prometheus

    return {"prometheus": prometheus.evaluate, "http": http.evaluate}


def evaluate(definition: AlarmDefinition, timeout: float) -> AlarmReading:
    """Read the alarm's state now, waiting at most about ``timeout`` seconds."""
    evaluator = _evaluators().get(definition.kind)
    if evaluator is None:
        return AlarmReading("UNKNOWN", f"alarm kind {definition.kind!r} is not supported")
    try:
        return evaluator(definition, timeout)
    except Exception as exc:  # a bug in a check must not stop the watcher
        log.exception("evaluating alarm %s failed", definition.name)
        return AlarmReading("UNKNOWN", f"evaluating the alarm failed: {exc}")


def to_document(definition: AlarmDefinition) -> dict[str, Any]:
    """The JSON form (stored, and answered by ShipyardGetAlarm / ShipyardListAlarms)."""
    doc: dict[str, Any] = {"alarmName": definition.name}
    if definition.kind == "prometheus":
        check: dict[str, Any] = {"url": definition.prometheus_url, "query": definition.query}
        if definition.threshold is not None:
            check["threshold"] = definition.threshold
        doc["prometheus"] = check
    else:
        check = {"url": definition.url, "expectStatus": definition.expect_status}
        if definition.timeout is not None:
            check["timeoutSeconds"] = definition.timeout
        doc["http"] = check
    doc["bakeSeconds"] = definition.bake_seconds
    return doc


def from_document(doc: dict[str, Any]) -> AlarmDefinition:
    """The inverse of ``to_document`` (for documents this module wrote)."""
    bake = float(doc.get("bakeSeconds", 0))
    if "prometheus" in doc:
        check = doc["prometheus"]
        threshold = check.get("threshold")
        return AlarmDefinition(
            name=doc["alarmName"],
            kind="prometheus",
            prometheus_url=check["url"],
            query=check["query"],
            threshold=None if threshold is None else float(threshold),
            bake_seconds=bake,
        )
    check = doc["http"]
    timeout = check.get("timeoutSeconds")
    return AlarmDefinition(
        name=doc["alarmName"],
        kind="http",
        url=check["url"],
        expect_status=int(check.get("expectStatus", DEFAULT_EXPECT_STATUS)),
        timeout=None if timeout is None else float(timeout),
        bake_seconds=bake,
    )
