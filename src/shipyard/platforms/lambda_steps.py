"""The Lambda platform's server-run steps (a ``ServerSteps``): hook functions and the
alias shift, off the request path, each result fed back to the engine as an input.

- A hook event (BeforeAllowTraffic, AfterAllowTraffic) invokes the appspec's hook
  function (``hook_functions``).
- A shift sets the alias's weights (``LambdaAliases.set_weight``) and answers
  ``TrafficShifted``. Shifts of one alias are applied in the order they were decided.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from shipyard.engine.messages import Input, TrafficShifted
from shipyard.engine.state import StoredDeployment
from shipyard.platforms.hook_functions import Background, HookFunctions
from shipyard.platforms.lambda_ import appspec_of
from shipyard.platforms.lambda_appspec import HOOK_EVENTS
from shipyard.platforms.lambda_backend import LambdaAliases, LambdaBackendError
from shipyard.store.db import Database

log = logging.getLogger("shipyard.lambda")

Apply = Callable[[str, Input], object]
SHIFT_EVENT = "AllowTraffic"


class LambdaSteps:
    def __init__(
        self,
        apply: Apply,
        db: Database,
        clock: Callable[[], float],
        backend: Callable[[], LambdaAliases],
    ) -> None:
        self._apply = apply
        self._backend = backend
        self._aliases: LambdaAliases | None = None
        self._hooks = HookFunctions(apply, db, clock, lambda: self.aliases().invoke_hook)
        self._background = Background(log)
        self._locks: dict[str, asyncio.Lock] = {}
        # (deployment, target, event) this process has started: ``resume`` (which the
        # sweeper calls every second) leaves those alone.
        self._started: set[tuple[str, str, str]] = set()

    def aliases(self) -> LambdaAliases:
        """The backend's client, built on first use (the server must be answering for
        the embedded host)."""
        if self._aliases is None:
            self._aliases = self._backend()
        return self._aliases

    # ---- ServerSteps --------------------------------------------------------------

    def run(self, stored: StoredDeployment, target_id: str, event: str) -> None:
        deployment_id = stored.state.deployment_id
        self._started.add((deployment_id, target_id, event))
        function = appspec_of(stored).hooks.get(event) if event in HOOK_EVENTS else None
        self._background.start(self._hooks.run(deployment_id, target_id, event, function))

    def shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        self._started.add((stored.state.deployment_id, target_id, SHIFT_EVENT))
        self._background.start(self._shift(stored, target_id, weight))

    def restore(self, stored: StoredDeployment, target_id: str) -> None:
        """Never asked: an alias's traffic goes back by a shift to 0."""

    def retire(self, stored: StoredDeployment, target_id: str) -> None:
        """Never asked: a Lambda deployment has no termination wait."""

    def dispatched(self, target_id: str) -> None:
        """Nothing to track: shifts of an alias are ordered by its lock."""

    def resume(self, stored: StoredDeployment) -> None:
        """After a restart: re-apply the weight in force of a shift under way (its
        answer completes the event at 100); invoke a hook again only if its execution id
        was never stored (a stored one still awaits its report, or its deadline)."""
        state = stored.state
        for target in state.targets.values():
            current = target.current()
            key = (state.deployment_id, target.target_id, current.name if current else "")
            if not target.in_flight or current is None or key in self._started:
                continue
            if current.name == SHIFT_EVENT:
                self.shift(stored, target.target_id, state.shift_weight)
            elif not self._hooks.awaiting_report(*key):
                self.run(stored, target.target_id, current.name)

    # ---- the work -----------------------------------------------------------------

    async def _shift(self, stored: StoredDeployment, target_id: str, weight: int) -> None:
        deployment_id = stored.state.deployment_id
        spec = appspec_of(stored)
        lock = self._locks.setdefault(target_id, asyncio.Lock())
        async with lock:
            try:
                aliases = await asyncio.to_thread(self.aliases)
                await asyncio.to_thread(aliases.set_weight, spec, weight)
            except LambdaBackendError as exc:
                self._apply(deployment_id, TrafficShifted(target_id, weight, False, str(exc)))
                return
        self._apply(deployment_id, TrafficShifted(target_id, weight, True))
