"""The load balancers as the server's config describes them."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from shipyard.config import ConfigError, ServerConfig
from shipyard.containers.elbv2.balancers import BalancerSettings, LoadBalancers
from shipyard.store.db import Database, for_threads

log = logging.getLogger("shipyard.elbv2")


OFF = "off"


def haproxy_binary(configured: str) -> str | None:
    """The HAProxy to run: ``elb_haproxy`` (a path, or "off"), else one on PATH or in
    /usr/sbin; None when there is none."""
    if configured == OFF:
        return None
    if configured:
        if shutil.which(configured) is None:
            raise ConfigError(f"elb_haproxy {configured!r} is not an executable")
        return configured
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")


def build_load_balancers(
    config: ServerConfig, db: Database, clock: Callable[[], float]
) -> LoadBalancers | None:
    """None when ``elb_haproxy`` is "off", or (with a warning) when no HAProxy is
    installed: the ELBv2 API then answers ServiceUnavailable, and nothing else changes."""
    binary = haproxy_binary(config.elb_haproxy)
    if binary is None:
        if config.elb_haproxy != OFF:
            log.warning("no haproxy found: the embedded ELBv2 is off (install haproxy)")
        return None
    settings = BalancerSettings(
        directory=Path(config.elb_dir) if config.elb_dir else config.data_dir / "elb",
        binary=binary,
        bind_address=config.elb_bind_address,
        # The same clock as a deployment's waits: health-check and deregistration
        # seconds shrink with minute_seconds in rehearsals and tests.
        time_scale=config.minute_seconds / 60.0,
        maxconn=config.elb_maxconn,
        keep_running=config.elb_keep_running,
    )
    # Its operations run on worker threads (HAProxy reloads take a while).
    return LoadBalancers(settings, for_threads(db, config.database_url), clock)
