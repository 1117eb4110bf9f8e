"""What a request handler is given: the process's services and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.config import ServerConfig
from shipyard.store.db import Database

if TYPE_CHECKING:
    from shipyard.containers.ecs.reconciler import Reconciler
    from shipyard.containers.elbv2.balancers import LoadBalancers
    from shipyard.containers.targets import TargetGroups
    from shipyard.functions.host import FunctionHost
    from shipyard.metrics import Metrics
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
    # The embedded ELBv2's HAProxy processes (also in ``workers``).
    load_balancers: LoadBalancers | None = None
    # The embedded container service: target groups as ECS sees them (the seam with
    # ELBv2), and the ECS reconciler that runs task sets (also in ``workers``).
    target_groups: TargetGroups | None = None
    ecs: Reconciler | None = None

    @property
    def metrics(self) -> Metrics:
        """The server's one metrics object (built in server/main.py, held by the runner)."""
        return self.runner.metrics


@dataclass(frozen=True)
class Principal:
    # "admin", "user" (a person with a role), "instance" (an agent), "internal" (the
    # server's own keys) or "function" (a function worker's own key)
    kind: str
    name: str  # "admin", the user's or instance's name, or "<function>:<version>"
    role: str = ""  # a user's role (server/permissions.py)


@dataclass
class Call:
    services: Services
    principal: Principal
    body: dict[str, Any]
    # The request's headers, lower-case names (agent calls: the stock agent says what it
    # is in x-amz-codedeploy-agent-version).
    headers: Mapping[str, str] = field(default_factory=dict)

    def now(self) -> float:
        return self.services.clock()


Json = dict[str, Any]
Handler = Callable[[Call], Json | Awaitable[Json]]
