"""Trigger deliveries (one row per webhook notification to send) and trigger secrets.

A delivery is Pending until it is Delivered or has Failed for good. A sender *claims*
a due Pending row by moving its ``next_attempt`` forward by a lease: no other sender
(another replica) takes it meanwhile, and if the process dies mid-send the row simply
becomes due again when the lease runs out, so nothing is lost across restarts.

Trigger secrets are stored in ``resource_tags`` under a pseudo-ARN per deployment
group id (see ``shipyard.notify``), keyed by trigger name, sealed by the server's
SecretBox (shipyard.secretbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select, update

from shipyard.secretbox import SecretBox, resealed
from shipyard.store import schema

_t = schema.trigger_deliveries
_c = _t.c

PENDING = "Pending"
DELIVERED = "Delivered"
FAILED = "Failed"


@dataclass(frozen=True)
class Delivery:
    id: int
    deployment_id: str
    application_name: str
    group_name: str
    trigger_name: str
    event_type: str
    url: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt: float
    last_error: str | None
    created: float
    delivered: float | None


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        deployment_id=row.deployment_id,
        application_name=row.application_name,
        group_name=row.group_name,
        trigger_name=row.trigger_name,
        event_type=row.event_type,
        url=row.url,
        payload=dict(row.payload),
        status=row.status,
        attempts=row.attempts,
        next_attempt=row.next_attempt,
        last_error=row.last_error,
        created=row.created,
        delivered=row.delivered,
    )


def insert_delivery(
    conn: Connection,
    *,
    deployment_id: str,
    application_name: str,
    group_name: str,
    trigger_name: str,
    event_type: str,
    url: str,
    payload: dict[str, Any],
    now: float,
) -> int:
    """Queue one delivery, due at once; returns its id."""
    result = conn.execute(
        _t.insert().values(
            deployment_id=deployment_id,
            application_name=application_name,
            group_name=group_name,
            trigger_name=trigger_name,
            event_type=event_type,
            url=url,
            payload=payload,
            status=PENDING,
            attempts=0,
            next_attempt=now,
            created=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def claim_due(conn: Connection, now: float, limit: int, lease: float) -> list[Delivery]:
    """Up to ``limit`` Pending deliveries due by ``now``, oldest first, each leased to
    the caller until ``now + lease``."""
    if limit <= 0:
        return []
    rows = conn.execute(
        select(_t)
        .where(and_(_c.status == PENDING, _c.next_attempt <= now))
        .order_by(_c.next_attempt, _c.id)
        .limit(limit)
    ).all()
    claimed = []
    for row in rows:
        # Only the sender whose update still sees the old next_attempt owns the row.
        result = conn.execute(
            update(_t)
            .where(and_(_c.id == row.id, _c.status == PENDING, _c.next_attempt == row.next_attempt))
            .values(next_attempt=now + lease)
        )
        if result.rowcount == 1:
            claimed.append(_delivery(row))
    return claimed


def next_due(conn: Connection) -> float | None:
    """When the earliest Pending delivery is due, if any."""
    row = conn.execute(
        select(_c.next_attempt).where(_c.status == PENDING).order_by(_c.next_attempt).limit(1)
    ).first()
    return float(row[0]) if row else None


def mark_delivered(conn: Connection, delivery_id: int, attempts: int, now: float) -> None:
    conn.execute(
        update(_t)
        .where(_c.id == delivery_id)
        .values(status=DELIVERED, attempts=attempts, delivered=now, last_error=None)
    )


def mark_retry(
    conn: Connection, delivery_id: int, attempts: int, next_attempt: float, error: str
) -> None:
    conn.execute(
        update(_t)
        .where(_c.id == delivery_id)
        .values(attempts=attempts, next_attempt=next_attempt, last_error=error)
    )


def mark_failed(conn: Connection, delivery_id: int, attempts: int, error: str) -> None:
    conn.execute(
        update(_t)
        .where(_c.id == delivery_id)
        .values(status=FAILED, attempts=attempts, last_error=error)
    )


def deliveries_of(conn: Connection, deployment_id: str) -> list[Delivery]:
    """Every delivery of a deployment, in the order they were queued."""
    rows = conn.execute(select(_t).where(_c.deployment_id == deployment_id).order_by(_c.id))
    return [_delivery(row) for row in rows]


def get_delivery(conn: Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(select(_t).where(_c.id == delivery_id)).first()
    return _delivery(row) if row else None


def deployment_group_id(conn: Connection, deployment_id: str) -> str | None:
    """The deploymentGroupId a deployment was made to (stable across renames)."""
    d = schema.deployments.c
    row = conn.execute(select(d.info).where(d.id == deployment_id)).first()
    if row is None:
        return None
    group_id = row[0].get("deploymentGroupId")
    return str(group_id) if group_id else None


# ---- trigger secrets ----------------------------------------------------------------

_tags = schema.resource_tags
_tc = _tags.c


def secret_arn(group_id: str) -> str:
    """Not an ARN on purpose: the tagging API accepts ARNs only, so it never sees these."""
    return f"shipyard:trigger-secret:{group_id}"


def _seal_context(arn: str, trigger_name: str) -> str:
    return f"{arn}/{trigger_name}"


def get_secret(conn: Connection, box: SecretBox, group_id: str, trigger_name: str) -> str | None:
    arn = secret_arn(group_id)
    row = conn.execute(
        select(_tc.value).where(and_(_tc.arn == arn, _tc.key == trigger_name))
    ).first()
    return box.open(str(row[0]), _seal_context(arn, trigger_name)) if row else None


def put_secret(
    conn: Connection, box: SecretBox, group_id: str, trigger_name: str, secret: str
) -> None:
    """Store a new secret (raises IntegrityError when the trigger already has one)."""
    arn = secret_arn(group_id)
    sealed = box.seal(secret, _seal_context(arn, trigger_name))
    conn.execute(_tags.insert().values(arn=arn, key=trigger_name, value=sealed))


def reseal_secrets(conn: Connection, box: SecretBox) -> int:
    """Seal every trigger secret not sealed under the current key; how many were."""
    rows = conn.execute(
        select(_tc.arn, _tc.key, _tc.value).where(_tc.arn.startswith(secret_arn("")))
    ).all()
    changed = 0
    for arn, name, stored in rows:
        sealed = resealed(box, stored, _seal_context(arn, name))
        if sealed is not None:
            conn.execute(
                _tags.update().where(and_(_tc.arn == arn, _tc.key == name)).values(value=sealed)
            )
            changed += 1
    return changed
