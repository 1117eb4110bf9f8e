"""A cluster's capacity: Docker Engine API endpoints (Podman's or Docker's), through
Docker's own client library. Blocking: the reconciler calls it in worker threads.

Each task's containers carry labels (the owner, the task id, the container name), so a
restarted server finds them again and removes those no task of its own claims. A
container publishes each containerPort on a free host port of the endpoint's host (on
127.0.0.1 for a local socket), or on the fixed hostPort its definition names; the
task's target is that address and port.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import requests.exceptions

from shipyard.containers.ecs.podman_service import (
    CapacityError,
    PodmanService,
    unix_socket_answers,
)

OWNER_LABEL = "shipyard.ecs.owner"
TASK_LABEL = "shipyard.ecs.task"
CONTAINER_LABEL = "shipyard.ecs.container"
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


@dataclass(frozen=True)
class Endpoint:
    base_url: str  # as docker.DockerClient takes it
    target_address: str  # where this endpoint's published ports are reached
    local: bool


def parse_endpoint(text: str) -> Endpoint:
    """``unix:/path`` or ``tcp:host:port`` (ServerConfig.ecs_endpoints)."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:").removeprefix("//")
        return Endpoint(f"unix://{path}", "127.0.0.1", True)
    if text.startswith("tcp:"):
        rest = text.removeprefix("tcp:").removeprefix("//")
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"ecs endpoint {text!r}: expected tcp:host:port")
        return Endpoint(f"tcp://{rest}", host.strip("[]"), host in ("127.0.0.1", "localhost"))
    raise ValueError(f"ecs endpoint {text!r}: expected unix:/path or tcp:host:port")


@dataclass(frozen=True)
class ContainerLaunch:
    name: str
    image: str
    command: list[str] | None
    entry_point: list[str] | None
    environment: dict[str, str]
    ports: list[tuple[int, int, str]]  # (containerPort, hostPort or 0, protocol)
    memory_mib: int | None = None
    cpu_units: int | None = None


@dataclass(frozen=True)
class TaskLaunch:
    task_id: str
    container_prefix: str  # container names are <prefix>-<container name>
    containers: list[ContainerLaunch]


@dataclass(frozen=True)
class Binding:
    container_port: int
    host_port: int
    protocol: str


@dataclass(frozen=True)
class StartedContainer:
    id: str
    bindings: list[Binding]


@dataclass(frozen=True)
class Started:
    endpoint: int
    target_address: str
    containers: dict[str, StartedContainer]


class LaunchFailed(Exception):
    """A task could not start: ECS's stopCode and stoppedReason."""

    def __init__(self, stop_code: str, reason: str) -> None:
        super().__init__(reason)
        self.stop_code = stop_code
        self.reason = reason[:1000]


@dataclass(frozen=True)
class Observed:
    endpoint: int
    task_id: str
    container: str
    id: str
    running: bool
    exit_code: int | None
    error: str = ""


@dataclass
class Capacity:
    endpoints: Sequence[Endpoint]
    owner: str
    podman: PodmanService | None = None  # endpoint 0 is this service when set
    _clients: dict[int, Any] = field(default_factory=dict)
    _load: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def local_podman(cls, service: PodmanService, owner: str) -> Capacity:
        return cls([Endpoint(service.address, "127.0.0.1", True)], owner, service)

    def client(self, index: int) -> Any:
        with self._lock:
            found = self._clients.get(index)
            if found is not None:
                return found
            if index == 0 and self.podman is not None:
                self.podman.ensure_started()
            endpoint = self.endpoints[index]
            path = endpoint.base_url.removeprefix("unix://")
            if endpoint.base_url.startswith("unix://") and not unix_socket_answers(path):
                raise CapacityError(f"{endpoint.base_url}: nothing answers on the socket")
            made = docker.DockerClient(base_url=self.endpoints[index].base_url, timeout=120)
            self._clients[index] = made
            return made

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for made in clients:
            made.close()
        if self.podman is not None:
            self.podman.stop()

    # ---- starting ---------------------------------------------------------------------

    def start(self, launch: TaskLaunch) -> Started:
        index = min(range(len(self.endpoints)), key=lambda i: (self._load.get(i, 0), i))
        endpoint = self.endpoints[index]
        try:
            engine = self.client(index)
        except (CapacityError, *ENGINE_ERRORS) as exc:
            raise LaunchFailed("TaskFailedToStart", f"CannotStartContainerError: {exc}") from exc
        made: list[Any] = []
        try:
            for spec in launch.containers:
                self._check_ports(endpoint, spec)
                self._ensure_image(engine, spec.image)
                made.append(self._create(engine, endpoint, launch, spec))
            for container in made:
                container.start()
            started = {}
            for spec, container in zip(launch.containers, made, strict=True):
                container.reload()
                started[spec.name] = StartedContainer(container.id, _bindings(container))
        except LaunchFailed:
            _remove_quietly(made)
            raise
        except ENGINE_ERRORS as exc:
            _remove_quietly(made)
            raise LaunchFailed(
                "TaskFailedToStart", f"CannotStartContainerError: {_says(exc)}"
            ) from exc
        self._load[index] = self._load.get(index, 0) + 1
        return Started(index, endpoint.target_address, started)

    def _check_ports(self, endpoint: Endpoint, spec: ContainerLaunch) -> None:
        """A fixed host port in use would fail the start with a less clear message."""
        for _container_port, host_port, protocol in spec.ports:
            if host_port and endpoint.local and protocol == "tcp" and _in_use(host_port):
                raise LaunchFailed(
                    "TaskFailedToStart",
                    f"RESOURCE:PORTS: host port {host_port} of container {spec.name} is "
                    "already in use on 127.0.0.1",
                )

    def _ensure_image(self, engine: Any, image: str) -> None:
        try:
            engine.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except ENGINE_ERRORS as exc:
            raise LaunchFailed(
                "TaskFailedToStart", f"CannotPullContainerError: {_says(exc)}"
            ) from exc
        try:
            engine.images.pull(image)  # the library splits off a tag or digest itself
        except ENGINE_ERRORS as exc:
            raise LaunchFailed(
                "TaskFailedToStart",
                f"CannotPullContainerError: pull of {image} failed: {_says(exc)}",
            ) from exc

    def _create(
        self, engine: Any, endpoint: Endpoint, launch: TaskLaunch, spec: ContainerLaunch
    ) -> Any:
        bind_ip = (
            "127.0.0.1" if endpoint.local else "0.0.0.0"
        )  # a remote host: reached by its address
        ports = {
            f"{port}/{protocol}": (bind_ip, host_port or None)
            for port, host_port, protocol in spec.ports
        }
        options: dict[str, Any] = {}
        if spec.memory_mib:
            options["mem_limit"] = f"{spec.memory_mib}m"
        if spec.cpu_units:
            options["cpu_shares"] = max(2, spec.cpu_units)
        return engine.containers.create(
            spec.image,
            command=spec.command,
            entrypoint=spec.entry_point,
            environment=spec.environment,
            name=f"{launch.container_prefix}-{spec.name}",
            hostname=launch.task_id[:12],
            labels={
                OWNER_LABEL: self.owner,
                TASK_LABEL: launch.task_id,
                CONTAINER_LABEL: spec.name,
            },
            ports=ports,
            init=True,  # PID 1 forwards SIGTERM: StopTask stops at once, not after a kill
            detach=True,
            **options,
        )

    # ---- watching and stopping -----------------------------------------------------------

    def observe(self) -> list[Observed]:
        """Every container of this owner on every endpoint (starting the local Podman
        service if need be). An endpoint that cannot be reached raises CapacityError."""
        found: list[Observed] = []
        for index in range(len(self.endpoints)):
            try:
                # The plain list: the library's containers.list inspects each container
                # after listing, which fails when one goes away in between.
                listed = self.client(index).api.containers(
                    all=True, filters={"label": f"{OWNER_LABEL}={self.owner}"}
                )
            except ENGINE_ERRORS as exc:
                raise CapacityError(f"{self.endpoints[index].base_url}: {_says(exc)}") from exc
            for container in listed:
                found.append(_observed(index, container))
            self._load[index] = len({o.task_id for o in found if o.endpoint == index and o.running})
        return found

    def stop(self, index: int, container_ids: Sequence[str], timeout: int) -> None:
        """Stop (SIGTERM, SIGKILL after ``timeout`` seconds) and remove the containers."""
        engine = self.client(index)
        for container_id in container_ids:
            try:
                container = engine.containers.get(container_id)
                container.stop(timeout=timeout)
                container.remove(force=True)
            except docker.errors.APIError as exc:
                if not _gone(exc):
                    raise

    def remove(self, index: int, container_ids: Sequence[str]) -> None:
        engine = self.client(index)
        for container_id in container_ids:
            try:
                engine.containers.get(container_id).remove(force=True)
            except docker.errors.APIError as exc:
                if not _gone(exc):
                    raise

    def check(self, index: int, container_id: str, command: list[str]) -> bool:
        """One run of a container health check command: whether it exited 0."""
        argv = ["/bin/sh", "-c", command[1]] if command[0] == "CMD-SHELL" else command
        if argv and argv[0] == "CMD":
            argv = argv[1:]
        try:
            result = self.client(index).containers.get(container_id).exec_run(argv)
        except ENGINE_ERRORS:
            return False
        return bool(result.exit_code == 0)


def _observed(index: int, listed: dict[str, Any]) -> Observed:
    labels = listed.get("Labels") or {}
    running = listed.get("State") == "running"
    # The list says "Exited (137) 2 seconds ago"; the code is all a stopped task shows.
    found = re.search(r"Exited \((-?\d+)\)", str(listed.get("Status", "")))
    exit_code = int(found.group(1)) if found and not running else None
    return Observed(
        index,
        labels.get(TASK_LABEL, ""),
        labels.get(CONTAINER_LABEL, ""),
        str(listed["Id"]),
        running,
        exit_code,
    )


def _gone(exc: docker.errors.APIError) -> bool:
    """Whether the container no longer exists (Podman answers 500 for some of these)."""
    return isinstance(exc, docker.errors.NotFound) or "no such container" in str(exc)


def _bindings(container: Any) -> list[Binding]:
    out = []
    for key, bound in (container.ports or {}).items():
        port, _, protocol = key.partition("/")
        for entry in bound or []:
            out.append(Binding(int(port), int(entry["HostPort"]), protocol or "tcp"))
    return out


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        # A port left only in TIME_WAIT is free to listen on; a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _remove_quietly(containers: Sequence[Any]) -> None:
    for container in containers:
        try:
            container.remove(force=True)
        except ENGINE_ERRORS:
            continue


def _says(exc: BaseException) -> str:
    """The engine's own words, on one line."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc)
    return " ".join(text.split())[:500]
