"""What an ELBv2 operation is given, and the helpers every operation shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table

from shipyard.containers.elbv2.balancers import LoadBalancers
from shipyard.containers.elbv2.names import invalid, not_found
from shipyard.containers.elbv2.process import BalancerError
from shipyard.errors import ApiError
from shipyard.server.context import Principal, Services
from shipyard.server.query_protocol import QueryParams
from shipyard.store import audit
from shipyard.store import elbv2 as store

Doc = dict[str, Any]
MAX_PAGE = 400


@dataclass
class ElbCall:
    services: Services
    principal: Principal
    operation: str
    params: QueryParams
    balancers: LoadBalancers

    @property
    def region(self) -> str:
        return self.services.config.region

    def now(self) -> float:
        return self.services.clock()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.balancers.db.tx() as conn:
            yield conn

    @contextmanager
    def changing(self, subject: str) -> Iterator[Connection]:
        """A transaction whose change reaches HAProxy (``balancers.apply``) before it
        commits; the balancers' lock keeps changes in order. Audited."""
        with self.balancers.lock, self.balancers.db.tx() as conn:
            try:
                yield conn
            except BalancerError as exc:
                raise ApiError(
                    "InvalidConfigurationRequest", f"The load balancer refused the change: {exc}"
                ) from None
            who = self.principal
            audit.record(
                conn,
                self.now(),
                who.kind,
                who.name,
                f"elasticloadbalancing:{self.operation}",
                subject,
            )

    def page(self, items: list[Doc], key: str) -> Doc:
        """One page of ``items``: Marker is the index to go on from, PageSize 1-400."""
        marker = self.params.text("Marker") or "0"
        if not marker.isdigit() or int(marker) > len(items):
            raise invalid(f"Invalid Marker {marker[:40]!r}")
        size = self.params.number("PageSize", 1, MAX_PAGE) or MAX_PAGE
        start = int(marker)
        answer: Doc = {key: items[start : start + size]}
        if start + size < len(items):
            answer["NextMarker"] = str(start + size)
        return answer


def existing(conn: Connection, table: Table, arn: str, kind: str) -> Doc:
    """The stored resource, or ``<kind>NotFound``."""
    doc = store.get(conn, table, arn)
    if doc is None:
        raise not_found(kind, arn)
    return doc


def created_before(
    conn: Connection, table: Table, name: str, settings: Doc, duplicate: ApiError
) -> Doc | None:
    """The resource of this name when it exists with the same ``settings`` (creating it
    again is no error, as on AWS); ``duplicate`` is raised when it has others."""
    found = store.find(conn, table, name=name)
    if not found:
        return None
    if any(found[0][key] != value for key, value in settings.items()):
        raise duplicate
    return found[0]


def selected(found: list[Doc], wanted: list[str] | None, key: str, kind: str) -> list[Doc]:
    """``found`` narrowed to the ``wanted`` values of ``key``; every one must exist, else
    ``<kind>NotFound`` names those that do not."""
    if not wanted:
        return found
    by_key = {doc[key]: doc for doc in found}
    missing = [item for item in wanted if item not in by_key]
    if missing:
        raise not_found(kind, ", ".join(missing))
    return [by_key[item] for item in dict.fromkeys(wanted)]
