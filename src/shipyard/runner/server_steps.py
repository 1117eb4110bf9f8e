"""The events a platform's server runs itself, behind one protocol.

The runner turns the machine's server-side actions into calls on the deployment's
platform's ``ServerSteps`` after the transaction commits. Each call returns at once and
does its work off the request path (a worker thread, an invocation that reports later),
then feeds the result back through ``apply`` as an input: ``Acknowledged`` and
``Completed`` (or ``HookReported``) for an event, ``TrafficShifted`` for a shift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from shipyard.engine.messages import Input, TrafficShifted
from shipyard.engine.state import StoredDeployment

Apply = Callable[[str, Input], object]


class ServerSteps(Protocol):
    def run(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        """Carry out a server-run lifecycle event of ``target_id``."""

    def restore(self, stored: StoredDeployment, target_id: str) -> None:
        """A target failed with its traffic taken away: give it back if it is healthy."""

    def shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        """Route ``weight`` percent of the target's traffic to the new revision."""

    def retire(self, stored: StoredDeployment, target_id: str) -> None:
        """After a traffic shift: retire the target's original revision (answered by a
        Retired input)."""

    def resume(self, stored: StoredDeployment) -> None:
        """After a restart: carry on with the server-run events in flight."""

    def dispatched(self, target_id: str) -> None:
        """An event was dispatched to ``target_id`` (newer than any step decided before)."""


# Builds a platform's steps once the runner exists (they report back through it).
StepsFactory = Callable[[Apply], ServerSteps]
PlatformSteps = Mapping[str, StepsFactory]


class NoShifts:
    """For platforms that never shift by weight: a shift fails, and so the deployment."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply

    def shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        message = (
            f"the {stored.info.get('computePlatform', 'Server')} platform has no weighted router"
        )
        self._apply(stored.state.deployment_id, TrafficShifted(target_id, weight, False, message))
