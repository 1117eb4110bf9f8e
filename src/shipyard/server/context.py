"""What a request handler is given: the process's services and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.config import ServerConfig
from shipyard.store.db import Database

if TYPE_CHECKING:
    from shipyard.functions.host import FunctionHost
    from shipyard.runner.core import Runner
    from shipyard.server.spec_signing import SpecSigner


class Worker(Protocol):
    """A background task of the server (alarm watcher, notification deliverer)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Services:
    """Built once per server process and passed to every handler."""

    config: ServerConfig
    db: Database
    runner: Runner
    clock: Callable[[], float]
    # Signs deployment specifications for the stock CodeDeploy agent.
    spec_signer: SpecSigner
    # Started and stopped with the app, after and before the runner.
    workers: list[Worker] = field(default_factory=list)
    # The embedded function host behind the Lambda API (also in ``workers``).
    function_host: FunctionHost | None = None


@dataclass(frozen=True)
class Principal:
    kind: str  # "admin", "instance" or "function" (a function worker's own key)
    name: str  # "admin", the on-premises instance name, or "<function>:<version>"


@dataclass
class Call:
    services: Services
    principal: Principal
    body: dict[str, Any]

    def now(self) -> float:
        return self.services.clock()


Json = dict[str, Any]
Handler = Callable[[Call], Json | Awaitable[Json]]
