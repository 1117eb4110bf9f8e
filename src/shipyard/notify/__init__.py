"""Trigger notifications: CodeDeploy-shaped payloads, queued for webhook delivery.

A deployment group's ``triggerConfigurations`` name a webhook URL in
``triggerTargetArn`` (CodeDeploy names an SNS topic there). When the engine emits a
``Notify(event, target_id)`` action, the runner adds it to a :class:`Notices` inside
its transaction; it only inserts one Pending ``trigger_deliveries`` row per matching
trigger, so a slow or dead webhook can never slow a deployment. The
:class:`~shipyard.notify.delivery.Deliverer` sends the rows afterwards.

Payloads carry the fields of CodeDeploy's notifications (reference §4.6), spelled as
CodeDeploy spells them, plus one Shipyard extension, ``eventType``. A webhook receives
the JSON object itself (CodeDeploy wraps it in an SNS message). Time formats follow
what CodeDeploy sends:

- deployment events: ``createTime``/``completeTime`` as ``"Thu Dec 13 20:23:06 UTC
  2018"`` (``completeTime`` is null until the deployment ends); ``deploymentOverview``
  and ``errorInformation`` are JSON *strings* (``{"Failed":"0",...}`` with string counts,
  ``{"ErrorCode":...,"ErrorMessage":...}``); ``errorInformation`` is present only when
  the deployment has an error; ``status`` is upper case (``CREATED`` for
  DeploymentStart, then ``SUCCEEDED``, ``FAILED``, ``STOPPED``, ...).
- instance events: ``lastUpdatedAt`` and each lifecycle event's ``StartTime``/``EndTime``
  as epoch-second strings with milliseconds (``"1446744207.564"``; null when the event
  has not started/ended); ``instanceId`` is the on-premises instance's ARN.

Trigger secrets (for the HMAC signature) live in ``resource_tags`` under the pseudo-ARN
``shipyard:trigger-secret:<deploymentGroupId>``, keyed by trigger name: they survive
group and application renames, are never listed by ListTagsForResource (which only
takes ARNs), and a group re-created under the same name gets new secrets.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from shipyard.engine.state import DeploymentState, TargetState
from shipyard.model import ACCOUNT_ID, DeploymentStatus
from shipyard.store import arns, deliveries, groups
from shipyard.store.db import Database
from shipyard.store.deployments import StoredDeployment

log = logging.getLogger("shipyard.notify")

DEPLOYMENT_EVENTS = frozenset(
    {
        "DeploymentStart",
        "DeploymentSuccess",
        "DeploymentFailure",
        "DeploymentStop",
        "DeploymentRollback",
        "DeploymentReady",
    }
)
INSTANCE_EVENTS = frozenset(
    {"InstanceStart", "InstanceSuccess", "InstanceFailure", "InstanceReady"}
)
OVERVIEW_KEYS = ("Failed", "InProgress", "Pending", "Skipped", "Succeeded")
WEBHOOK_SCHEMES = ("http://", "https://")

# Java's Date.toString in UTC, as CodeDeploy writes createTime/completeTime; spelled
# out rather than strftime'd so the process locale cannot change it.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def codedeploy_time(epoch: float | None) -> str | None:
    """``"Thu Dec 13 20:23:06 UTC 2018"``, or None."""
    if epoch is None:
        return None
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC {t.tm_year}"
    )


def epoch_string(epoch: float | None) -> str | None:
    """``"1446744207.564"``, or None."""
    return None if epoch is None else f"{epoch:.3f}"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _upper_status(status: DeploymentStatus) -> str:
    """``InProgress`` -> ``IN_PROGRESS``: CodeDeploy's notification spelling."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(status.value)).upper()


def deployment_status(state: DeploymentState, event: str) -> str:
    if event == "DeploymentStart":
        return "CREATED"
    return _upper_status(state.status)


def overview_string(state: DeploymentState) -> str:
    """The instance counts as CodeDeploy's notifications carry them: a JSON string
    whose counts are strings too."""
    counts = dict.fromkeys(OVERVIEW_KEYS, 0)
    for target in state.targets.values():
        key = target.status.value if target.status.value in counts else "Pending"
        counts[key] += 1
    return _compact({key: str(count) for key, count in counts.items()})


def deployment_payload(
    stored: StoredDeployment, event: str, trigger_name: str, region: str
) -> dict[str, Any]:
    """The payload of a deployment event (DeploymentStart, DeploymentSuccess, ...)."""
    state = stored.state
    payload: dict[str, Any] = {
        "region": region,
        "accountId": ACCOUNT_ID,
        "eventTriggerName": trigger_name,
        "applicationName": stored.application_name,
        "deploymentId": state.deployment_id,
        "deploymentGroupName": stored.group_name,
        "createTime": codedeploy_time(state.create_time),
        "completeTime": codedeploy_time(state.complete_time),
        "deploymentOverview": overview_string(state),
        "status": deployment_status(state, event),
        "eventType": event,
    }
    if state.error_code:
        payload["errorInformation"] = _compact(
            {"ErrorCode": state.error_code, "ErrorMessage": state.error_message or ""}
        )
    return payload


def lifecycle_events(target: TargetState) -> list[dict[str, Any]]:
    return [
        {
            "LifecycleEvent": event.name,
            "LifecycleEventStatus": event.status.value,
            "StartTime": epoch_string(event.start_time),
            "EndTime": epoch_string(event.end_time),
        }
        for event in target.events
    ]


def instance_payload(
    stored: StoredDeployment, target_id: str, event: str, trigger_name: str, region: str
) -> dict[str, Any]:
    """The payload of an instance event (InstanceStart, InstanceSuccess, ...)."""
    target = stored.state.targets[target_id]
    return {
        "region": region,
        "accountId": ACCOUNT_ID,
        "eventTriggerName": trigger_name,
        "deploymentId": stored.state.deployment_id,
        "instanceId": arns.instance_arn(region, target_id),
        "lastUpdatedAt": epoch_string(target.last_updated),
        "instanceStatus": target.status.value,
        "lifecycleEvents": lifecycle_events(target),
        "eventType": event,
    }


def build_payload(
    stored: StoredDeployment, event: str, target_id: str | None, trigger_name: str, region: str
) -> dict[str, Any]:
    """The payload for ``event``; raises ValueError for an event it cannot describe."""
    if event in INSTANCE_EVENTS:
        if target_id is None or target_id not in stored.state.targets:
            raise ValueError(f"{event} needs a target of the deployment; got {target_id!r}")
        return instance_payload(stored, target_id, event, trigger_name, region)
    if event in DEPLOYMENT_EVENTS:
        return deployment_payload(stored, event, trigger_name, region)
    raise ValueError(f"unknown trigger event {event!r}")


def matching_triggers(group: dict[str, Any], event: str) -> list[tuple[str, str]]:
    """``(triggerName, url)`` of the group's triggers that fire on ``event``.

    A trigger that cannot be delivered (no name, no http(s) URL, e.g. an SNS topic ARN
    from a CodeDeploy setup) is skipped with a warning rather than failing anything.
    """
    found = []
    for trigger in group.get("triggerConfigurations") or []:
        if not isinstance(trigger, dict):
            log.warning(
                "group %s: ignoring malformed trigger %r", group.get("deploymentGroupName"), trigger
            )
            continue
        events = trigger.get("triggerEvents")
        if not isinstance(events, list) or event not in events:
            continue
        name, url = trigger.get("triggerName"), trigger.get("triggerTargetArn")
        if not isinstance(name, str) or not name:
            log.warning(
                "group %s: ignoring a trigger without a name", group.get("deploymentGroupName")
            )
        elif not isinstance(url, str) or not url.lower().startswith(WEBHOOK_SCHEMES):
            log.warning(
                "group %s: trigger %s targets %r, not an http(s) webhook URL; not notified",
                group.get("deploymentGroupName"),
                name,
                url,
            )
        else:
            found.append((name, url))
    return found


class Notices:
    """Queues a step's notices inside the caller's transaction. The group's triggers
    are read once, on the first notice (a step that starts 1,000 hosts has 1,000
    InstanceStart notices), and once per transaction when the caller passes the same
    ``groups`` dict to every step of it (a group commit steps hundreds of events)."""

    def __init__(
        self,
        conn: Connection,
        stored: StoredDeployment,
        now: float,
        region: str,
        groups: dict[tuple[str, str], dict[str, Any]] | None = None,
    ):
        self._conn = conn
        self._stored = stored
        self._now = now
        self._region = region
        self._groups = groups if groups is not None else {}
        self._group: dict[str, Any] | None = None

    def add(self, event: str, target_id: str | None) -> int:
        """Queue ``event`` for every trigger of the group that wants it; returns how
        many deliveries were queued. Never raises for a malformed trigger or an event
        it cannot describe (those are logged)."""
        stored = self._stored
        if self._group is None:
            key = (stored.application_name, stored.group_name)
            group = self._groups.get(key)
            if group is None:
                triggers = groups.trigger_configurations(self._conn, *key)
                group = self._groups[key] = (
                    {}
                    if triggers is None
                    else {"deploymentGroupName": key[1], "triggerConfigurations": triggers}
                )
            self._group = group
        if not self._group:
            return 0
        queued = 0
        for name, url in matching_triggers(self._group, event):
            try:
                payload = build_payload(stored, event, target_id, name, self._region)
            except (ValueError, KeyError, TypeError):
                log.exception("cannot describe %s for %s", event, stored.state.deployment_id)
                return queued
            deliveries.insert_delivery(
                self._conn,
                deployment_id=stored.state.deployment_id,
                application_name=stored.application_name,
                group_name=stored.group_name,
                trigger_name=name,
                event_type=event,
                url=url,
                payload=payload,
                now=self._now,
            )
            queued += 1
        return queued


def trigger_secret(db: Database, group_id: str, trigger_name: str) -> str:
    """The trigger's signing secret, created on first use.

    Two first uses at once (another replica) may both try to create it; the loser's
    insert fails and it reads the winner's secret.
    """
    try:
        with db.tx() as conn:
            existing = deliveries.get_secret(conn, db.secret_box, group_id, trigger_name)
            if existing is not None:
                return existing
            secret = secrets.token_hex(32)
            deliveries.put_secret(conn, db.secret_box, group_id, trigger_name, secret)
            return secret
    except IntegrityError:
        with db.tx() as conn:
            existing = deliveries.get_secret(conn, db.secret_box, group_id, trigger_name)
        if existing is None:
            raise
        return existing
