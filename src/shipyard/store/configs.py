"""Deployment configurations: the predefined ones (data) and custom ones (rows).

Every function returns ``deploymentConfigInfo`` dicts exactly as GetDeploymentConfig
answers them; callers get their own copies and may change them freely.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import Connection, select

from shipyard.store import schema
from shipyard.store.predefined_configs import PREDEFINED_CONFIGS, PREFIX

_t = schema.deployment_configs
_c = _t.c


def is_predefined(name: str) -> bool:
    return name in PREDEFINED_CONFIGS


def is_reserved_name(name: str) -> bool:
    """Custom configs may not use the predefined configs' prefix."""
    return name.startswith(PREFIX)


def get_deployment_config(conn: Connection, name: str) -> dict[str, Any] | None:
    """deploymentConfigInfo for a predefined or custom config, or None."""
    predefined = PREDEFINED_CONFIGS.get(name)
    if predefined is not None:
        return copy.deepcopy(predefined)
    row = conn.execute(select(_c.doc).where(_c.name == name)).first()
    return dict(row[0]) if row else None


def insert_deployment_config(conn: Connection, info: dict[str, Any]) -> None:
    """Store a custom config; ``info`` is its complete deploymentConfigInfo."""
    conn.execute(
        _t.insert().values(
            name=info["deploymentConfigName"],
            id=info["deploymentConfigId"],
            create_time=info["createTime"],
            doc=info,
        )
    )


def list_deployment_config_names(conn: Connection) -> list[str]:
    """Predefined and custom config names, sorted."""
    custom = [row[0] for row in conn.execute(select(_c.name))]
    return sorted([*PREDEFINED_CONFIGS, *custom])


def delete_deployment_config(conn: Connection, name: str) -> None:
    """Delete a custom config (predefined ones are not rows; callers refuse those)."""
    conn.execute(_t.delete().where(_c.name == name))
