"""Shipyard extensions for trigger notifications: a trigger's signing secret, and the
deliveries of a deployment with their outcome."""

from __future__ import annotations

from typing import Any

from shipyard import notify
from shipyard.errors import ApiError
from shipyard.server import validate
from shipyard.server.context import Call, Handler, Json
from shipyard.server.operations.deployments import _app_and_group, _deployment_id, load_deployment
from shipyard.store import deliveries
from shipyard.store.deliveries import Delivery


def get_trigger_secret(call: Call) -> Json:
    """{applicationName, deploymentGroupName, triggerName} -> {secret}; the secret is
    created on first request (or first delivery) and stays the same afterwards."""
    trigger_name = validate.required(call.body, "triggerName", "InvalidTriggerConfigException")
    if not isinstance(trigger_name, str):
        raise ApiError("InvalidTriggerConfigException", "triggerName must be a string")
    with call.services.db.tx() as conn:
        _app, group = _app_and_group(conn, call.body)
    names = [
        t.get("triggerName")
        for t in group.get("triggerConfigurations") or []
        if isinstance(t, dict)
    ]
    if trigger_name not in names:
        raise ApiError(
            "InvalidTriggerConfigException",
            f"Deployment group {group['deploymentGroupName']} has no trigger named "
            f"{trigger_name!r}",
        )
    secret = notify.trigger_secret(call.services.db, group["deploymentGroupId"], trigger_name)
    return {"secret": secret}


def _delivery_json(delivery: Delivery) -> Json:
    item: dict[str, Any] = {
        "id": delivery.id,
        "triggerName": delivery.trigger_name,
        "eventType": delivery.event_type,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "created": delivery.created,
    }
    if delivery.last_error is not None:
        item["lastError"] = delivery.last_error
    if delivery.delivered is not None:
        item["delivered"] = delivery.delivered
    if delivery.status == deliveries.PENDING:
        item["nextAttempt"] = delivery.next_attempt
    return item


def list_trigger_deliveries(call: Call) -> Json:
    """{deploymentId} -> {deliveries: [...]}, in the order they were queued."""
    stored = load_deployment(call, _deployment_id(call.body))
    with call.services.db.tx() as conn:
        found = deliveries.deliveries_of(conn, stored.state.deployment_id)
    return {"deliveries": [_delivery_json(d) for d in found]}


OPERATIONS: dict[str, Handler] = {
    "ShipyardGetTriggerSecret": get_trigger_secret,
    "ShipyardListTriggerDeliveries": list_trigger_deliveries,
}
