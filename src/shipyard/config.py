"""One frozen config object per process, built once and passed down.

Sources, later ones winning: named defaults below, an optional YAML file,
environment variables prefixed ``SHIPYARD_`` (e.g. ``SHIPYARD_PORT``), then flags.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420
DEFAULT_REGION = "us-east-1"
DEFAULT_POLL_SECONDS = 20.0  # how long PollHostCommand holds a request open
DEFAULT_EVENT_TIMEOUT = 3600.0  # CodeDeploy's per-lifecycle-event limit
DEFAULT_MAX_BUNDLE_BYTES = 2 * 1024**3
DEFAULT_MAX_UNPACKED_BYTES = 10 * 1024**3  # what one bundle may expand to on a host
DEFAULT_MAX_BUNDLE_MEMBERS = 100_000
DEFAULT_MAX_REVISIONS = 5
DEFAULT_AGENT_TIMEOUT = 60.0
DEFAULT_ALARM_POLL_SECONDS = 1.0
DEFAULT_REOFFER_SECONDS = 30.0
DEFAULT_LEASE_SECONDS = 5.0
DEFAULT_DRAIN_SECONDS = 30.0
DEFAULT_HEALTH_SECONDS = 30.0
S3_MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3's limit for one PUT (an object or a part)
# Connections: one long poll per agent plus headroom for clients; clamped at start to
# what the open-file limit allows.
DEFAULT_MAX_CONNECTIONS = 8192
DEFAULT_HEADER_TIMEOUT = 10.0  # a connection must finish sending its headers within this
# Request bodies of the JSON protocols. An agent's update carries at most 64 Ki
# characters of output and a completion at most 1 Mi characters of diagnostics: well
# under the agent cap, even JSON-escaped twice.
DEFAULT_MAX_API_BODY_BYTES = 4 * 1024**2
DEFAULT_MAX_AGENT_BODY_BYTES = 8 * 1024**2
DEFAULT_MAX_COMMAND_OUTPUT_BYTES = 1024 * 1024  # script output kept per host command
ENV_PREFIX = "SHIPYARD_"
# The agent has its own prefix: SHIPYARD_ENDPOINT, say, is the CLI's server URL and
# must not redirect an agent started from the same shell.
AGENT_ENV_PREFIX = "SHIPYARD_AGENT_"


class ConfigError(ValueError):
    """A configuration value is missing or malformed (one readable line)."""


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database: str = ""  # SQLAlchemy URL; empty means SQLite in data_dir
    region: str = DEFAULT_REGION
    # Regions a request may be signed for besides ``region`` (comma-separated): by default
    # the one the shipyard CLI and agent sign for when not told a region.
    signing_regions: str = DEFAULT_REGION
    tls_cert: str = ""
    tls_key: str = ""
    # Public URL agents and clients use to reach this server (presigned bundle URLs).
    public_url: str = ""
    # The built-in store also serves bucket B at B.<bucket_domain> (virtual-hosted
    # addressing, as the stock CodeDeploy agent's S3 client uses by host name); empty
    # means public_url's host name. Needs wildcard DNS and a wildcard certificate.
    bucket_domain: str = ""
    # External S3-compatible bundle store; empty means the built-in one.
    s3_endpoint: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    git_base_url: str = "https://github.com"
    poll_seconds: float = DEFAULT_POLL_SECONDS
    event_timeout: float = DEFAULT_EVENT_TIMEOUT
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    # An agent not heard from for this long has lost its host (CodeDeploy waits an hour).
    agent_timeout: float = DEFAULT_AGENT_TIMEOUT
    alarm_poll_seconds: float = DEFAULT_ALARM_POLL_SECONDS
    # A command handed to a poller but never acknowledged is offered again after this.
    reoffer_seconds: float = DEFAULT_REOFFER_SECONDS
    # Replicas on one database: a replica's leases on shared work (sweeping a
    # deployment, watching an alarm) last this long unless renewed (every second), so
    # a dead replica's work moves to another within about this many seconds.
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    # Load balancer for WITH_TRAFFIC_CONTROL groups: "haproxy" (runtime API at
    # traffic_address, "unix:/path" or "tcp:host:port"), "memory", or "" for none.
    traffic_router: str = ""
    traffic_address: str = ""
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    health_seconds: float = DEFAULT_HEALTH_SECONDS
    # Replacement hosts for blue/green COPY_AUTO_SCALING_GROUP: "podman", "memory" or "".
    provisioner: str = ""
    # How many seconds one "minute" of a deployment's waits lasts (traffic-shift
    # intervals, blue/green ready and termination waits): 60 in production; a few
    # hundredths in tests and local rehearsals, so a canary runs in seconds.
    minute_seconds: float = 60.0
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_api_body_bytes: int = DEFAULT_MAX_API_BODY_BYTES
    max_agent_body_bytes: int = DEFAULT_MAX_AGENT_BODY_BYTES

    # Where the key that encrypts stored secrets comes from (shipyard.secretbox): ""
    # for DATA_DIR/secret.key (created at first start), "file:<path>" or "env:<NAME>".
    secret_keys: str = ""
    # Script output stored per host command: beyond it the middle is cut, keeping the
    # first and last halves.
    max_command_output_bytes: int = DEFAULT_MAX_COMMAND_OUTPUT_BYTES
    # The embedded function host (Lambda API): concurrent invocations on this server and
    # per function (beyond them Invoke answers 429), how long an idle warm worker lives,
    # how long a worker's own access key lives (the worker is then replaced), the user
    # workers run as when the server runs as root, where code is unpacked for them
    # (empty: a fresh directory under the system temp dir), and the interpreter that runs
    # python3.x functions (empty: the server's own, so boto3 is importable).
    functions_max_concurrency: int = 16
    functions_max_function_concurrency: int = 16
    functions_idle_seconds: float = 300.0
    functions_credential_seconds: float = 3600.0
    functions_user: str = "nobody"
    functions_work_dir: str = ""
    functions_python: str = ""
    # Where Lambda deployments find their functions: "embedded" (this server's function
    # host, through its own Lambda API) or "aws" (AWS Lambda in functions_region, keys
    # from the AWS chain). functions_endpoint overrides the Lambda API URL (any
    # implementation of it, e.g. moto's server in tests).
    functions_backend: str = "embedded"
    functions_endpoint: str = ""
    functions_region: str = ""
    # Where ECS deployments find their services and load balancers: "embedded" (this
    # server's container service, through its own ECS and ELBv2 APIs) or "aws" (AWS in
    # containers_region, keys from the AWS chain). containers_endpoint overrides the
    # URL of both APIs (moto's server in tests). A replacement task set is polled this
    # often until it is steady.
    containers_backend: str = "embedded"
    containers_endpoint: str = ""
    containers_region: str = ""
    containers_poll_seconds: float = 1.0
    # How long a Lambda hook function has to report its result (CodeDeploy: one hour).
    hook_timeout: float = DEFAULT_EVENT_TIMEOUT

    # The embedded ELBv2 (shipyard.containers.elbv2): each load balancer is an HAProxy
    # process (elb_haproxy: its executable, empty for "haproxy" on PATH or /usr/sbin,
    # "off" for no load balancers on this server)
    # with its files and runtime sockets in a directory of elb_dir (empty: DATA_DIR/elb;
    # unix socket paths must stay under 108 bytes). Listeners bind elb_bind_address.
    # With elb_keep_running, load balancers keep serving while the server is stopped,
    # and the next start adopts them; otherwise they stop with the server.
    elb_haproxy: str = ""
    elb_dir: str = ""
    elb_bind_address: str = "127.0.0.1"
    elb_keep_running: bool = True
    elb_maxconn: int = 4096
    # The embedded ECS's capacity: Docker Engine API endpoints, comma-separated
    # ("unix:/path" or "tcp:host:port"); empty means a Podman API service this server
    # starts on first use (its store under DATA_DIR/ecs). ecs_reconcile_seconds: how often
    # the reconciler looks when nothing changes; ecs_drain_timeout: the longest it waits
    # for a stopping task's targets to drain.
    ecs_endpoints: str = ""
    ecs_reconcile_seconds: float = 1.0
    ecs_drain_timeout: float = 300.0

    # Who may read GET /metrics (server/probes.py): with metrics_address
    # ("host:port") set, anyone who reaches that separate listener and nobody on the main
    # port; otherwise requests with "Authorization: Bearer <metrics_token>" (when set)
    # or signed (SigV4) by a key allowed to read.
    metrics_token: str = ""
    metrics_address: str = ""
    # A console sign-in lasts this long (seconds), then the person signs in again.
    console_session_seconds: float = 8 * 3600.0

    def __post_init__(self) -> None:
        if not 0 < self.max_bundle_bytes <= S3_MAX_SINGLE_PUT_BYTES:
            raise ValueError(f"max_bundle_bytes must be between 1 and {S3_MAX_SINGLE_PUT_BYTES}")
        if self.max_connections < 1 or self.header_timeout <= 0:
            raise ValueError("max_connections and header_timeout must be positive")
        if min(self.max_api_body_bytes, self.max_agent_body_bytes) < 1:
            raise ValueError("max_api_body_bytes and max_agent_body_bytes must be positive")
        if self.minute_seconds <= 0:
            raise ValueError("minute_seconds must be positive")
        if self.hook_timeout <= 0:
            raise ValueError("hook_timeout must be positive")
        if self.lease_seconds < 2:
            raise ValueError("lease_seconds must be at least 2 (leases are renewed every second)")

    @functools.cached_property  # read by every request's signature check
    def signing_region_set(self) -> frozenset[str]:
        extra = (name.strip() for name in self.signing_regions.split(","))
        return frozenset({self.region, *(name for name in extra if name)})

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'shipyard.db'}"

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{self.host}:{self.port}"


@dataclass(frozen=True)
class AgentConfig:
    """What ``shipyard instance register`` writes and ``shipyard agent`` reads."""

    endpoint: str
    instance_name: str
    access_key_id: str
    secret_access_key: str
    host_identifier: str  # the instance's registered IAM ARN, as CodeDeploy agents send
    region: str = DEFAULT_REGION
    root_dir: Path = Path("/opt/shipyard-agent/deployment-root")
    log_dir: Path = Path("/var/log/shipyard-agent")
    max_revisions: int = DEFAULT_MAX_REVISIONS
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    max_bundle_members: int = DEFAULT_MAX_BUNDLE_MEMBERS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    max_concurrent_commands: int = 16
    ca_file: str = ""
    verbose: bool = False


def _coerce(value: Any, typ: Any) -> Any:
    if typ in (Path, "Path"):
        return Path(value)
    if typ in (int, "int"):
        return int(value)
    if typ in (float, "float"):
        return float(value)
    if typ in (bool, "bool"):
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"1", "true", "yes", "on"}
    return str(value)


def build(
    cls: type[Any],
    *,
    file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    prefix: str = ENV_PREFIX,
) -> Any:
    """Build ``cls`` from defaults, an optional YAML file, ``<prefix>*`` env and flags."""
    values: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {file}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {file} must hold a mapping")
        values.update(loaded)
    env = os.environ if env is None else env
    known = {f.name: f for f in fields(cls)}
    for name in known:
        key = prefix + name.upper()
        if key in env:
            values[name] = env[key]
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = value
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(sorted(unknown))}")
    try:
        coerced = {name: _coerce(v, known[name].type) for name, v in values.items()}
        return cls(**coerced)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc


def agent_config_to_yaml(config: AgentConfig) -> str:
    data = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()
    }
    return yaml.safe_dump(data, sort_keys=False)


__all__ = ["AgentConfig", "ConfigError", "ServerConfig", "agent_config_to_yaml", "build"]
