"""What every resource provider implements, and what it is given.

Providers block (boto3 calls; a Lambda alias waits out its CodeDeploy deployment): the
executor runs them in worker threads. A provider refuses with ``ProviderError``, whose
message becomes the resource's status reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shipyard.errors import ShipyardError


class ProviderError(ShipyardError):
    """The service refused or the resource failed; the message says why."""


Note = Callable[[str, dict[str, Any]], None]


def _ignore(_reason: str, _progress: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Request:
    """One resource to create or update."""

    logical_id: str
    resource_type: str
    # The physical name to use when the template names none (generated, stable).
    name: str
    properties: dict[str, Any]
    update_policy: dict[str, Any] = field(default_factory=dict)
    # What the provider noted about this resource before (a deployment's id), so a
    # rollback after a restart finds it.
    progress: dict[str, Any] = field(default_factory=dict)
    # Records an event reason and progress to persist, from the provider's thread.
    note: Note = _ignore


@dataclass(frozen=True)
class Current:
    """A resource as it exists."""

    physical_id: str
    properties: dict[str, Any]
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    def create(self, request: Request) -> Outcome: ...

    def update(self, request: Request, current: Current, rolling_back: bool) -> Outcome:
        """Change ``current`` in place to ``request.properties``. ``rolling_back``: put
        it back as it was, directly (no deployment)."""
        ...

    def delete(self, current: Current) -> None:
        """Delete it; one already gone is not an error."""
        ...


@runtime_checkable
class Abandons(Protocol):
    """A provider whose step may leave work running (a deployment): a rollback asks it
    to end that work, from what the step noted as ``progress``, before putting the
    resource back."""

    def abandon(self, progress: dict[str, Any], note: Note) -> None: ...
