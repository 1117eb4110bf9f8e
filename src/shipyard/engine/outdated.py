"""outdatedInstancesStrategy UPDATE (reference §4.7): a host that joins a deployment
group after its last successful deployment (registered, or tagged into it, with its
agent running) gets that revision in a follow-on deployment with
``creator=CodeDeployAutoUpdate``, linked to the root deployment through
``relatedDeployments``. IGNORE leaves such hosts alone.

Pure: the runner reads an ``OutdatedSnapshot`` and creates the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.engine.launch import LaunchRequest
from shipyard.engine.state import StoredDeployment
from shipyard.model import DeploymentCreator


def wants_update(group: dict[str, Any]) -> bool:
    """Whether the group tops up hosts that join it (before reading anything more)."""
    if group.get("outdatedInstancesStrategy", "UPDATE") != "UPDATE":
        return False
    if (group.get("deploymentStyle") or {}).get("deploymentType") == "BLUE_GREEN":
        return False  # a blue/green group's fleet is replaced, not topped up
    return bool((group.get("lastSuccessfulDeployment") or {}).get("deploymentId")) and bool(
        group.get("targetRevision")
    )


@dataclass(frozen=True)
class OutdatedSnapshot:
    active: str | None  # the group's active deployment, if any
    heard_from: tuple[str, ...]  # members whose agent has polled
    done: frozenset[str]  # hosts any deployment of the revision already targeted
    root: StoredDeployment | None  # the last successful deployment
    config: dict[str, Any] | None  # the group's deployment config


def request(group: dict[str, Any], snapshot: OutdatedSnapshot) -> LaunchRequest | None:
    """The follow-on deployment for the hosts to bring up to date, if any.

    A host counts once its agent has polled; a host that any deployment of the
    revision already targeted (even one that failed there) is not tried again."""
    if not wants_update(group) or snapshot.active is not None:
        return None
    hosts = [host for host in snapshot.heard_from if host not in snapshot.done]
    root = snapshot.root
    if not hosts or root is None or snapshot.config is None:
        return None
    return LaunchRequest(
        app_name=group["applicationName"],
        group=group,
        config=snapshot.config,
        revision=dict(group["targetRevision"]),
        creator=DeploymentCreator.AUTO_UPDATE.value,
        description=f"Outdated instances brought up to {root.state.deployment_id}'s revision",
        file_exists_behavior=str(root.info.get("fileExistsBehavior", "DISALLOW")),
        only_targets=tuple(hosts),
    )


def link(root: StoredDeployment, update: StoredDeployment) -> None:
    update.info["relatedDeployments"] = {
        "autoUpdateOutdatedInstancesRootDeploymentId": root.state.deployment_id
    }
    related = root.info.setdefault("relatedDeployments", {})
    related.setdefault("autoUpdateOutdatedInstancesDeploymentIds", []).append(
        update.state.deployment_id
    )
