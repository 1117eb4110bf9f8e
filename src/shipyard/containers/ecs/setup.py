"""The embedded ECS as the server's config describes it: its capacity and reconciler."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from shipyard.config import ConfigError, ServerConfig
from shipyard.containers.ecs.capacity import Capacity, parse_endpoint
from shipyard.containers.ecs.podman_service import PodmanService
from shipyard.containers.ecs.reconciler import Reconciler, ReconcilerSettings
from shipyard.containers.targets import TargetGroups
from shipyard.store.db import Database


def build_capacity(config: ServerConfig) -> Capacity:
    # Containers are labelled with their owner: one database's tasks, whichever server
    # (or restart of it) runs them; others' containers on a shared engine are left alone.
    owner = hashlib.sha256(config.database_url.encode()).hexdigest()[:16]
    texts = [part.strip() for part in config.ecs_endpoints.split(",") if part.strip()]
    if not texts:
        return Capacity.local_podman(PodmanService(config.data_dir / "ecs"), owner)
    try:
        return Capacity([parse_endpoint(text) for text in texts], owner)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_reconciler(
    config: ServerConfig,
    db: Database,
    clock: Callable[[], float],
    target_groups: TargetGroups | None,
) -> Reconciler:
    settings = ReconcilerSettings(
        region=config.region,
        idle_seconds=config.ecs_reconcile_seconds,
        drain_timeout=config.ecs_drain_timeout,
    )
    return Reconciler(settings, db, clock, build_capacity(config), target_groups)
