"""Lambda API: Invoke (RequestResponse, Event, DryRun) through the function host."""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import Response

from shipyard.errors import ApiError
from shipyard.functions.call import Json, LambdaCall, json_response
from shipyard.functions.code import CodeStore, Package
from shipyard.functions.host import Throttled
from shipyard.functions.names import (
    LATEST,
    VERSION,
    function_arn,
    function_missing,
    invalid,
    parse_function_ref,
)
from shipyard.functions.routing import choose_version
from shipyard.functions.worker import FunctionSpec, Outcome
from shipyard.store import functions as store
from shipyard.store.quick_reads import QuickReads

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_EVENT_PAYLOAD = 1024 * 1024
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


async def invoke(call: LambdaCall) -> Response:
    name, qualifier = parse_function_ref(call.params["name"], call.query.get("Qualifier"))
    kind = call.headers.get("x-amz-invocation-type", "RequestResponse")
    if kind not in INVOCATION_TYPES:
        raise invalid(f"InvocationType must be one of {', '.join(INVOCATION_TYPES)}")
    limit = MAX_EVENT_PAYLOAD if kind == "Event" else MAX_SYNC_PAYLOAD
    if len(call.body) > limit:
        raise ApiError(
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            413,
        )
    host = call.services.function_host
    if host is None:
        raise ApiError("ServiceException", "The function host is not running", 500)
    doc = _version_to_run(call, name, qualifier, host.rng)
    payload = call.body or b"{}"
    try:
        json.loads(payload)
    except ValueError as exc:
        raise ApiError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from None
    executed = {"X-Amz-Executed-Version": doc["Version"]}
    if kind == "DryRun":
        return _answer(b"", 204, executed)
    revision = (doc["FunctionName"], doc["Version"], doc["RevisionId"])
    spec = host.spec(
        revision, lambda: function_spec(call.services.config.data_dir / "functions", doc)
    )
    invoked_arn = function_arn(call.region, name, qualifier)
    try:
        if kind == "Event":
            host.submit_event(spec, payload, invoked_arn)
            return _answer(b"", 202, executed)
        started = time.monotonic()
        tail = call.headers.get("x-amz-log-type") == "Tail"
        outcome = await host.invoke(
            spec, payload, invoked_arn, _client_context(call), want_log=tail
        )
    except Throttled:
        return _throttled()
    headers = dict(executed)
    if outcome.request_id:
        headers["x-amzn-RequestId"] = outcome.request_id  # the function's aws_request_id
    if outcome.is_error:
        headers["X-Amz-Function-Error"] = "Unhandled"
    if tail:
        millis = (time.monotonic() - started) * 1000
        headers["X-Amz-Log-Result"] = _log_tail(doc, outcome, millis)
    return _answer(outcome.body, 200, headers)


def function_spec(code_root: Path, doc: Json) -> FunctionSpec:
    package = Package(doc["CodeSha256"], doc["CodeSize"])
    return FunctionSpec(
        name=doc["FunctionName"],
        version=doc["Version"],
        revision_id=doc["RevisionId"],
        runtime=doc["Runtime"],
        handler=doc.get("Handler", ""),
        timeout=int(doc["Timeout"]),
        memory=int(doc["MemorySize"]),
        environment=dict(doc.get("Environment", {}).get("Variables", {})),
        code_sha256=package.sha256,
        package_path=CodeStore(code_root).path(doc["FunctionName"], package),
    )


@dataclass(frozen=True)
class Candidates:
    """The docs an Invoke of ``name`` and ``qualifier`` may run: the version's, or the
    alias and the versions it routes to."""

    name: str
    qualifier: str | None
    alias: Json | None
    versions: dict[str, Json]


def read_candidates(params: dict[str, str], query: dict[str, str]) -> Callable[[QuickReads], Any]:
    """Reads the Candidates with the caller's key (``auth.from_headers``' ``also``); a
    malformed name reads nothing (``invoke`` then says what is wrong, after auth)."""

    def read(reads: QuickReads) -> Candidates | None:
        try:
            name, chosen = parse_function_ref(params["name"], query.get("Qualifier"))
        except ApiError:
            return None
        return _candidates(reads, name, chosen)

    return read


def _candidates(reads: QuickReads, name: str, qualifier: str | None) -> Candidates:
    version = qualifier or LATEST
    if version == LATEST or VERSION.fullmatch(version):
        doc = store.read_version(reads, name, version)
        return Candidates(name, qualifier, None, {version: doc} if doc else {})
    alias = store.read_alias(reads, name, version)
    if alias is None:
        return Candidates(name, qualifier, None, {})
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    routed = [str(alias["FunctionVersion"]), *map(str, weights)]
    found = {each: store.read_version(reads, name, each) for each in routed}
    return Candidates(name, qualifier, alias, {k: doc for k, doc in found.items() if doc})


def _version_to_run(call: LambdaCall, name: str, qualifier: str | None, rng: random.Random) -> Json:
    found = call.prefetched
    if not (isinstance(found, Candidates) and (found.name, found.qualifier) == (name, qualifier)):
        found = _candidates(call.services.db.quick, name, qualifier)
    version = qualifier or LATEST
    if version != LATEST and not VERSION.fullmatch(version):
        if found.alias is None:
            raise function_missing(call.region, name, version)
        version = choose_version(found.alias, rng)
    doc = found.versions.get(version)
    if doc is None:
        raise function_missing(call.region, name, qualifier)
    return doc


def _client_context(call: LambdaCall) -> str:
    raw = call.headers.get("x-amz-client-context", "")
    if not raw:
        return ""
    try:
        decoded = base64.b64decode(raw, validate=True).decode()
        json.loads(decoded)
    except (binascii.Error, ValueError):
        raise invalid("Client context must be a valid Base64-encoded JSON object.") from None
    return decoded


def _log_tail(doc: Json, outcome: Outcome, millis: float) -> str:
    """Lambda's log lines around the worker's output, base64, last 4 KB."""
    request = f"RequestId: {outcome.request_id}"
    text = (
        f"START {request} Version: {doc['Version']}\n".encode()
        + outcome.log_tail
        + f"END {request}\nREPORT {request}\tDuration: {millis:.2f} ms\t".encode()
        + f"Memory Size: {doc['MemorySize']} MB\n".encode()
    )
    return base64.b64encode(text[-4096:]).decode()


def _throttled() -> Response:
    body = {
        "Type": "User",
        "message": "Rate Exceeded.",
        "Reason": "ConcurrentInvocationLimitExceeded",
    }
    response = json_response(body, 429)
    response.headers["x-amzn-ErrorType"] = "TooManyRequestsException"
    response.headers["Retry-After"] = "1"
    return response


def _answer(body: bytes, status: int, headers: dict[str, str]) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)
