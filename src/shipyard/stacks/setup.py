"""The StackRunner as the server's config describes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shipyard.config import ServerConfig
from shipyard.server.permissions import STACKS_PRINCIPAL
from shipyard.stacks.providers.clients import Clients
from shipyard.stacks.providers.protocol import Provider
from shipyard.stacks.providers.registry import providers
from shipyard.stacks.runner import StackRunner
from shipyard.store import credentials
from shipyard.store.db import Database


def build_stack_runner(
    config: ServerConfig, db: Database, clock: Callable[[], float]
) -> StackRunner:
    def build() -> Mapping[str, Provider]:
        # Read on the event loop when the first operation runs, then held: providers
        # call from worker threads, which must not touch the database.
        with db.tx() as conn:
            key = credentials.internal_key(conn, db.secret_box, *STACKS_PRINCIPAL, clock())
        return providers(Clients(config.url, config.region, lambda: key))

    return StackRunner(db, clock, config.region, build)
