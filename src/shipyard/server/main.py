"""Build the server's services, bootstrap the admin key, and serve."""

from __future__ import annotations

import configparser
import functools
import gc
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from shipyard.bundlestore.urls import bundle_url
from shipyard.config import ServerConfig
from shipyard.containers.ecs.setup import build_reconciler
from shipyard.containers.elbv2.balancers import LoadBalancers
from shipyard.containers.elbv2.seam import EmbeddedTargetGroups
from shipyard.containers.elbv2.setup import build_load_balancers
from shipyard.containers.targets import TargetGroups
from shipyard.containers.targets_memory import MemoryTargetGroups
from shipyard.functions.setup import build_function_host
from shipyard.metrics import Metrics
from shipyard.notify.delivery import Deliverer
from shipyard.platforms import ecs_backend
from shipyard.platforms.ecs_backend import EcsServices
from shipyard.platforms.ecs_steps import EcsSteps
from shipyard.platforms.hook_functions import Invoke
from shipyard.platforms.lambda_backend import HOOK_CLIENT_CONFIG, LambdaAliases, build_client
from shipyard.platforms.lambda_steps import LambdaSteps
from shipyard.provision import Provisioner, ProvisionerConfig, get_provisioner
from shipyard.provision.retiring import RetiredHosts
from shipyard.runner.core import Runner
from shipyard.runner.server_steps import Apply
from shipyard.secretbox import AesGcmBox, key_provider
from shipyard.server import spec_signing
from shipyard.server.alarm_watch import AlarmWatcher
from shipyard.server.app import create_app
from shipyard.server.connections import connection_cap, guarded_protocol, raise_open_file_limit
from shipyard.server.context import Services
from shipyard.server.data_dir import create_private_file, secure_data_dir
from shipyard.server.live_metrics import live_gauges
from shipyard.server.metrics_listener import MetricsListener
from shipyard.server.operations import ecs_deployments
from shipyard.stacks.setup import build_stack_runner
from shipyard.store import credentials, open_database
from shipyard.store.db import Database
from shipyard.traffic import RouterConfig, TrafficRouter, get_router


def build_services(config: ServerConfig) -> Services:
    secure_data_dir(config.data_dir)
    if not config.database:
        create_private_file(config.data_dir / "shipyard.db")  # SQLite would make it 0644
    box = AesGcmBox(key_provider(config.secret_keys, config.data_dir).keys())
    db = open_database(config.database_url, box)
    clock = time.time
    runner = Runner(
        config,
        db,
        clock,
        router=_router(config),
        provisioner=_provisioner(config),
        platform_steps={
            "Lambda": functools.partial(_lambda_steps, config, db, clock),
            "ECS": functools.partial(_ecs_steps, config, db, clock),
        },
        metrics=Metrics(),  # the server's one metrics object (services.metrics)
    )
    signer = spec_signing.load_or_create(config.data_dir, clock())
    services = Services(config=config, db=db, runner=runner, clock=clock, spec_signer=signer)
    # Agents get a ready-to-GET URL for S3 bundles, so they never need S3 keys.
    runner.agents.bundle_url = functools.partial(bundle_url, services)
    runner.rollback_targets = functools.partial(ecs_deployments.rollback_targets, services)
    if runner.provisioner is not None:
        services.workers.append(RetiredHosts(db, runner.provisioner, runner.node))
    services.workers.append(AlarmWatcher(services))
    services.workers.append(Deliverer(services))
    services.function_host = build_function_host(config, db, clock)
    services.workers.append(services.function_host)
    services.load_balancers = build_load_balancers(config, db, clock)
    if services.load_balancers is not None:
        services.workers.append(services.load_balancers)
    services.target_groups = _target_groups(services.load_balancers)
    services.ecs = build_reconciler(config, db, clock, services.target_groups)
    services.workers.append(services.ecs)
    services.stack_runner = build_stack_runner(config, db, clock)
    services.workers.append(services.stack_runner)
    services.metrics.add_live(functools.partial(live_gauges, services))
    if config.metrics_address:
        services.workers.append(MetricsListener(services))
    return services


def _internal_key(db: Database, clock: Callable[[], float], name: str) -> tuple[str, str]:
    with db.tx() as conn:
        return credentials.internal_key(conn, db.secret_box, "internal", name, clock())


def _lambda_steps(
    config: ServerConfig, db: Database, clock: Callable[[], float], apply: Apply
) -> LambdaSteps:
    """Lambda deployments talk to their functions through a ``lambda`` client: this
    server's own host (with the server's internal key) or AWS (functions_backend)."""
    key = functools.partial(_internal_key, db, clock, "function-deployer")

    def backend() -> LambdaAliases:
        return LambdaAliases(
            build_client(config, key), build_client(config, key, HOOK_CLIENT_CONFIG)
        )

    return LambdaSteps(apply, db, clock, backend)


def _ecs_steps(
    config: ServerConfig, db: Database, clock: Callable[[], float], apply: Apply
) -> EcsSteps:
    """ECS deployments talk to their service and load balancer through ``ecs`` and
    ``elbv2`` clients (containers_backend), and invoke hook functions through the
    ``lambda`` client Lambda deployments use (functions_backend)."""
    function_key = functools.partial(_internal_key, db, clock, "function-deployer")
    container_key = functools.partial(_internal_key, db, clock, "container-deployer")

    def backend() -> EcsServices:
        ecs, elbv2 = ecs_backend.build_clients(config, container_key)
        return EcsServices(ecs, elbv2, config.containers_poll_seconds)

    def invoker() -> Invoke:
        hooks = build_client(config, function_key, HOOK_CLIENT_CONFIG)
        return LambdaAliases(hooks, hooks).invoke_hook

    return EcsSteps(apply, db, clock, backend, invoker, config.hook_timeout)


def _target_groups(load_balancers: LoadBalancers | None) -> TargetGroups:
    """Target groups as the embedded ECS registers tasks in them (the one place that
    chooses): the embedded ELBv2's; in memory on a server without load balancers
    (``elb_haproxy: off``), where only the process itself can create groups."""
    if load_balancers is not None:
        return EmbeddedTargetGroups(load_balancers)
    return MemoryTargetGroups()


def _router(config: ServerConfig) -> TrafficRouter | None:
    if not config.traffic_router:
        return None
    return get_router(RouterConfig(kind=config.traffic_router, address=config.traffic_address))


def _provisioner(config: ServerConfig) -> Provisioner | None:
    if not config.provisioner:
        return None
    work_dir = config.data_dir / "hosts"
    return get_provisioner(ProvisionerConfig(kind=config.provisioner, work_dir=work_dir))


def ensure_admin_credentials(services: Services) -> Path:
    """On first start, issue the admin key and write ``DATA_DIR/credentials``."""
    path = services.config.data_dir / "credentials"
    with services.db.tx() as conn:
        if credentials.has_admin(conn) and path.exists():
            return path
        key_id, secret = credentials.issue(
            conn, services.db.secret_box, "admin", "admin", services.clock()
        )
    parser = configparser.ConfigParser()
    parser["default"] = {
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "region": services.config.region,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        parser.write(out)
    return path


class _Server(uvicorn.Server):
    """uvicorn, but answering the open long polls at shutdown instead of waiting them out."""

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self.services = services

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.services.runner.agents.release_polls()
        await super().shutdown(sockets)


def _uvicorn(services: Services) -> _Server:
    config = services.config
    cap = connection_cap(config.max_connections, raise_open_file_limit())
    return _Server(
        uvicorn.Config(
            create_app(services),
            host=config.host,
            port=config.port,
            http=guarded_protocol(config.header_timeout, cap),
            log_level="warning",
            ssl_certfile=config.tls_cert or None,
            ssl_keyfile=config.tls_key or None,
            # uvloop keeps the socket of a TLS handshake the client gave up on open
            # (seen with clients that refuse the certificate), so a TLS server runs
            # on asyncio's own loop, whose TLS layer closes it.
            loop="asyncio" if config.tls_cert else "auto",
            access_log=False,
            # Nothing reads the client's address or scheme (signatures and presigned
            # URLs use the Host header and the configured URL): no middleware per request
            # to rewrite them from X-Forwarded-* headers.
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ),
        services,
    )


def tune_garbage_collector() -> None:
    """Collect less often than CPython's default, and never look at startup's objects.

    A server holding thousands of long polls keeps hundreds of thousands of objects
    alive, and every request allocates. At the default thresholds (a young collection
    every 700 allocations, older generations every 10 of those), collection took 16 %
    of the server's CPU in a 1,000-host deployment with 3,000 agents connected
    (bench/control_plane.py: 0.79 ms per host-event, 0.63 ms with these settings,
    0.62 ms with no collection at all) for a few MiB more memory."""
    gc.freeze()  # the modules, the AWS models and the schema live as long as the process
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle * 2, oldest)


def serve(config: ServerConfig) -> None:
    services = build_services(config)
    ensure_admin_credentials(services)
    tune_garbage_collector()
    _uvicorn(services).run()


# Long polls are released at shutdown rather than waited for.
GRACEFUL_SHUTDOWN_SECONDS = 1
# Allocations between young collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


@dataclass
class EmbeddedServer:
    """A server running in a background thread of this process (demo, bench, tests)."""

    services: Services
    url: str
    credentials_path: Path
    _server: _Server
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self.services.db.close()


def start_embedded(config: ServerConfig) -> EmbeddedServer:
    services = build_services(config)
    credentials_path = ensure_admin_credentials(services)
    server = _uvicorn(services)
    thread = threading.Thread(target=server.run, name="shipyard-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start on {config.host}:{config.port}")
        time.sleep(0.01)
    return EmbeddedServer(services, config.url, credentials_path, server, thread)
