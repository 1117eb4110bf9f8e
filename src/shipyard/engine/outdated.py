"""outdatedInstancesStrategy UPDATE (reference §4.7): a host that joins a deployment
group after its last successful deployment (registered, or tagged into it, with its
agent running) gets that revision in a follow-on deployment with
``creator=CodeDeployAutoUpdate``, linked to the root deployment through
``relatedDeployments``. IGNORE leaves such hosts alone.

Reads the store; the runner creates the deployment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from shipyard.engine.launch import LaunchRequest
from shipyard.model import DeploymentCreator
from shipyard.store import deployments as store
from shipyard.store import resources


def outdated_hosts(conn: Connection, group: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(root deployment id, hosts) when the group has hosts to bring up to date.

    A host counts once its agent has polled; a host that any deployment of the
    revision already targeted (even one that failed there) is not tried again."""
    if group.get("outdatedInstancesStrategy", "UPDATE") != "UPDATE":
        return None
    if (group.get("deploymentStyle") or {}).get("deploymentType") == "BLUE_GREEN":
        return None  # a blue/green group's fleet is replaced, not topped up
    root = (group.get("lastSuccessfulDeployment") or {}).get("deploymentId")
    revision = group.get("targetRevision")
    if not root or not revision:
        return None
    app, name = group["applicationName"], group["deploymentGroupName"]
    if store.active_for_group(conn, app, name) is not None:
        return None
    members = resources.instances_for_group(conn, group)
    done = store.targets_of_revision(conn, app, name, revision)
    new = [host for host in store.agents_heard_from(conn, members) if host not in done]
    return (root, new) if new else None


def request(
    conn: Connection, group: dict[str, Any], root: str, hosts: list[str]
) -> LaunchRequest | None:
    config_name = group.get("deploymentConfigName") or "CodeDeployDefault.OneAtATime"
    config = resources.get_deployment_config(conn, config_name)
    previous = store.load(conn, root)
    if config is None or previous is None:
        return None
    return LaunchRequest(
        app_name=group["applicationName"],
        group=group,
        config=config,
        revision=dict(group["targetRevision"]),
        creator=DeploymentCreator.AUTO_UPDATE.value,
        description=f"Outdated instances brought up to {root}'s revision",
        file_exists_behavior=str(previous.info.get("fileExistsBehavior", "DISALLOW")),
        only_targets=tuple(hosts),
    )


def link(root: store.StoredDeployment, update: store.StoredDeployment) -> None:
    update.info["relatedDeployments"] = {
        "autoUpdateOutdatedInstancesRootDeploymentId": root.state.deployment_id
    }
    related = root.info.setdefault("relatedDeployments", {})
    related.setdefault("autoUpdateOutdatedInstancesDeploymentIds", []).append(
        update.state.deployment_id
    )
