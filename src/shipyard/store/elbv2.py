"""The embedded ELBv2's resources: load balancers, target groups, listeners, rules and
registered targets (shipyard.containers.elbv2 gives the docs their meaning)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, select

from shipyard.store import schema

Doc = dict[str, Any]
LOAD_BALANCERS = schema.elb_load_balancers
TARGET_GROUPS = schema.elb_target_groups
LISTENERS = schema.elb_listeners
RULES = schema.elb_rules
_t = schema.elb_targets.c

REGISTERED = "registered"
DRAINING = "draining"


def insert(conn: Connection, table: Table, arn: str, doc: Doc, **columns: Any) -> None:
    conn.execute(table.insert().values(arn=arn, doc=doc, **columns))


def get(conn: Connection, table: Table, arn: str) -> Doc | None:
    row = conn.execute(select(table.c.doc).where(table.c.arn == arn)).first()
    return None if row is None else {"Arn": arn, **row[0]}


def find(conn: Connection, table: Table, **where: Any) -> list[Doc]:
    """Rows whose columns equal ``where``, in ARN order (stable pages)."""
    query = select(table.c.arn, table.c.doc).order_by(table.c.arn)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    return [{"Arn": arn, **doc} for arn, doc in conn.execute(query).all()]


def update(conn: Connection, table: Table, arn: str, doc: Doc, **columns: Any) -> None:
    stored = {key: value for key, value in doc.items() if key != "Arn"}
    conn.execute(table.update().where(table.c.arn == arn).values(doc=stored, **columns))


def delete(conn: Connection, table: Table, arn: str) -> None:
    conn.execute(table.delete().where(table.c.arn == arn))


# ---- targets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetRow:
    tg_arn: str
    address: str
    port: int
    state: str  # REGISTERED or DRAINING
    since: float  # when it was registered (or started draining)
    drain_until: float | None


def targets(conn: Connection, tg_arn: str | None = None) -> list[TargetRow]:
    query = select(schema.elb_targets).order_by(_t.tg_arn, _t.address, _t.port)
    if tg_arn is not None:
        query = query.where(_t.tg_arn == tg_arn)
    return [TargetRow(*row) for row in conn.execute(query).all()]


def draining(conn: Connection) -> list[TargetRow]:
    query = select(schema.elb_targets).where(_t.state == DRAINING)
    return [TargetRow(*row) for row in conn.execute(query).all()]


def _key(tg_arn: str, address: str, port: int) -> Any:
    return (_t.tg_arn == tg_arn) & (_t.address == address) & (_t.port == port)


def register(conn: Connection, tg_arn: str, address: str, port: int, now: float) -> None:
    """Register a target; registering a draining one takes it back (as on AWS)."""
    found = conn.execute(select(_t.state).where(_key(tg_arn, address, port))).first()
    if found is None:
        conn.execute(
            schema.elb_targets.insert().values(
                tg_arn=tg_arn, address=address, port=port, state=REGISTERED, since=now
            )
        )
    elif found[0] == DRAINING:
        conn.execute(
            schema.elb_targets.update()
            .where(_key(tg_arn, address, port))
            .values(state=REGISTERED, since=now, drain_until=None)
        )


def start_draining(
    conn: Connection, tg_arn: str, address: str, port: int, now: float, until: float
) -> bool:
    """Whether the target was registered (and now drains)."""
    result = conn.execute(
        schema.elb_targets.update()
        .where(_key(tg_arn, address, port) & (_t.state == REGISTERED))
        .values(state=DRAINING, since=now, drain_until=until)
    )
    return bool(result.rowcount)


def remove(conn: Connection, tg_arn: str, address: str, port: int) -> None:
    conn.execute(schema.elb_targets.delete().where(_key(tg_arn, address, port)))


def remove_group_targets(conn: Connection, tg_arn: str) -> None:
    conn.execute(schema.elb_targets.delete().where(_t.tg_arn == tg_arn))
