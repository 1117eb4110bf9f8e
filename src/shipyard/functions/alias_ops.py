"""Lambda API: aliases, with weighted routing to one additional version."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from shipyard.functions.call import Json, LambdaCall, alias_configuration, json_response
from shipyard.functions.names import (
    LATEST,
    VERSION,
    check_alias_name,
    conflict,
    function_arn,
    function_missing,
    invalid,
    not_found,
    parse_function_ref,
    precondition_failed,
)
from shipyard.store import functions as store


def create_alias(call: LambdaCall) -> Response:
    body = call.json()
    function = _function(call)
    name = check_alias_name(body.get("Name"))
    with call.services.db.tx() as conn:
        _require_function(call, conn, function)
        version = _target_version(call, conn, function, body.get("FunctionVersion"))
        doc: Json = {
            "Name": name,
            "FunctionVersion": version,
            "Description": str(body.get("Description", "")),
            "RoutingConfig": _routing(call, conn, function, version, body.get("RoutingConfig")),
            "RevisionId": str(uuid.uuid4()),
        }
        if store.get_alias(conn, function, name) is not None:
            raise conflict(f"Alias already exists: {function_arn(call.region, function, name)}")
        store.create_alias(conn, function, doc)
    return json_response(alias_configuration(doc, function, call.region), 201)


def get_alias(call: LambdaCall) -> Response:
    function = _function(call)
    with call.services.db.tx() as conn:
        doc = _alias(call, conn, function)
    return json_response(alias_configuration(doc, function, call.region))


def update_alias(call: LambdaCall) -> Response:
    body = call.json()
    function = _function(call)
    with call.services.db.tx() as conn:
        doc = _alias(call, conn, function)
        revision = body.get("RevisionId")
        if revision is not None and revision != doc["RevisionId"]:
            raise precondition_failed(
                "The Revision Id provided does not match the latest Revision Id. Call the "
                "GetFunction/GetAlias API to retrieve the latest Revision Id"
            )
        version = doc["FunctionVersion"]
        if "FunctionVersion" in body:
            version = _target_version(call, conn, function, body["FunctionVersion"])
        routing = doc.get("RoutingConfig", {})
        if "RoutingConfig" in body:
            routing = body["RoutingConfig"]
        doc = {
            **doc,
            "FunctionVersion": version,
            "RoutingConfig": _routing(call, conn, function, version, routing),
            "RevisionId": str(uuid.uuid4()),
        }
        if "Description" in body:
            doc["Description"] = str(body["Description"])
        store.put_alias(conn, function, doc)
    return json_response(alias_configuration(doc, function, call.region))


def delete_alias(call: LambdaCall) -> Response:
    function = _function(call)
    with call.services.db.tx() as conn:
        _require_function(call, conn, function)
        _alias(call, conn, function)
        store.delete_alias(conn, function, call.params["alias"])
    return json_response(None, 204)


def list_aliases(call: LambdaCall) -> Response:
    function = _function(call)
    wanted = call.query.get("FunctionVersion")
    with call.services.db.tx() as conn:
        _require_function(call, conn, function)
        docs = store.aliases(conn, function)
    if wanted is not None:
        docs = [doc for doc in docs if doc["FunctionVersion"] == wanted]
    rendered = [alias_configuration(doc, function, call.region) for doc in docs]
    return json_response(call.page(rendered, "Aliases"))


def _function(call: LambdaCall) -> str:
    name, qualifier = parse_function_ref(call.params["name"])
    if qualifier is not None:
        raise invalid(f"An alias belongs to an unqualified function name, not {qualifier!r}")
    return name


def _require_function(call: LambdaCall, conn: Any, function: str) -> None:
    if not store.exists(conn, function):
        raise function_missing(call.region, function)


def _alias(call: LambdaCall, conn: Any, function: str) -> Json:
    name = call.params["alias"]
    doc = store.get_alias(conn, function, name)
    if doc is None:
        raise not_found(f"Alias not found: {function_arn(call.region, function, name)}")
    return doc


def _target_version(call: LambdaCall, conn: Any, function: str, version: object) -> str:
    if not isinstance(version, str) or not (version == LATEST or VERSION.fullmatch(version)):
        raise invalid(f"FunctionVersion must be $LATEST or a version number, not {version!r}")
    if store.get_version(conn, function, version) is None:
        raise function_missing(call.region, function, version)
    return version


def _routing(call: LambdaCall, conn: Any, function: str, version: str, routing: object) -> Json:
    """A checked RoutingConfig: at most one additional published version, weight 0..1."""
    if routing is None:
        return {}
    if not isinstance(routing, dict):
        raise invalid("RoutingConfig must be an object")
    weights = routing.get("AdditionalVersionWeights", {})
    if not isinstance(weights, dict):
        raise invalid("RoutingConfig.AdditionalVersionWeights must be a map")
    if not weights:
        return {}
    if len(weights) > 1:
        raise invalid(
            "Number of items in AdditionalVersionWeights cannot be greater than 1 "
            f"(got {len(weights)})"
        )
    if version == LATEST:
        raise invalid("$LATEST is not supported for an alias pointing to more than 1 version")
    ((extra, weight),) = weights.items()
    if not isinstance(extra, str) or not VERSION.fullmatch(extra):
        raise invalid(f"Additional version {extra!r} must be a published version number")
    if extra == version:
        raise invalid(
            f"Invalid function version {extra}. Function version {extra} is already "
            "included in routing configuration."
        )
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
        raise invalid(
            f"1 validation error detected: Value '{weight}' at "
            "'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map "
            "value must satisfy constraint: [Member must have value less than or equal to "
            "1.0, Member must have value greater than or equal to 0.0]"
        )
    if store.get_version(conn, function, extra) is None:
        raise function_missing(call.region, function, extra)
    return {"AdditionalVersionWeights": {extra: float(weight)}}
