"""The CodeDeploy API operations, one module per resource family.

Each module exports ``OPERATIONS: dict[str, Handler]`` keyed by operation name.
"""

from __future__ import annotations

from shipyard.server.context import Handler
from shipyard.server.operations import (
    alarms,
    applications,
    configs,
    controls,
    deployments,
    groups,
    instances,
    revisions,
    rollbacks,
    tags,
    targets,
    triggers,
    users,
)

API_OPERATIONS: dict[str, Handler] = {
    **applications.OPERATIONS,
    **revisions.OPERATIONS,
    **groups.OPERATIONS,
    **configs.OPERATIONS,
    **instances.OPERATIONS,
    **tags.OPERATIONS,
    **deployments.OPERATIONS,
    **targets.OPERATIONS,
    **alarms.OPERATIONS,
    **rollbacks.OPERATIONS,
    **controls.OPERATIONS,
    **triggers.OPERATIONS,
    **users.OPERATIONS,
}
