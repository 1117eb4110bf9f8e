"""What the console's pages show, as plain data (the templates and the page script
render it): a deployment, the overview, and the actions a person may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.engine.state import StoredDeployment
from shipyard.model import TERMINAL_DEPLOYMENT_STATUSES, DeploymentStatus
from shipyard.server import permissions
from shipyard.server.context import Principal, Services
from shipyard.server.operations import render
from shipyard.store import audit, console_reads, groups, resources
from shipyard.store import deployments as deployment_store

HISTORY_ROWS = 20


@dataclass(frozen=True)
class Action:
    name: str  # the URL segment: POST /console/deployments/{id}/{name}
    label: str
    operation: str
    confirm: str


ACTIONS = {
    a.name: a
    for a in (
        Action("stop", "Stop", "StopDeployment", "Stop this deployment?"),
        Action(
            "stop-rollback",
            "Stop and roll back",
            "StopDeployment",
            "Stop this deployment and roll its hosts back to the previous revision?",
        ),
        Action("pause", "Pause", "ShipyardPauseDeployment", "Pause: start no new hosts?"),
        Action("resume", "Resume", "ShipyardResumeDeployment", "Resume this deployment?"),
        Action("approve", "Approve", "ShipyardApproveDeployment", "Approve this deployment?"),
        Action("continue", "Continue", "ContinueDeployment", "Reroute traffic and continue?"),
        Action(
            "rollback",
            "Roll back to the previous revision",
            "ShipyardRollback",
            "Roll this group back to its previous revision?",
        ),
    )
}


def action_body(action: Action, stored: StoredDeployment) -> dict[str, Any]:
    deployment_id = stored.state.deployment_id
    match action.name:
        case "stop":
            return {"deploymentId": deployment_id, "autoRollbackEnabled": False}
        case "stop-rollback":
            return {"deploymentId": deployment_id, "autoRollbackEnabled": True}
        case "continue":
            return {"deploymentId": deployment_id, "deploymentWaitType": "READY_WAIT"}
        case "rollback":
            return {
                "applicationName": stored.application_name,
                "deploymentGroupName": stored.group_name,
            }
    return {"deploymentId": deployment_id}


def available(stored: StoredDeployment) -> list[str]:
    """The actions that make sense in the deployment's present state."""
    state = stored.state
    if state.status in TERMINAL_DEPLOYMENT_STATUSES:
        return ["rollback"]
    names = ["stop", "stop-rollback"]
    names.append("resume" if state.paused else "pause")
    if state.awaiting_approval:
        names.append("approve")
    if state.status == DeploymentStatus.READY:
        names.append("continue")
    return [*names, "rollback"]


def revision_label(revision: dict[str, Any]) -> str:
    if revision.get("revisionType") == "S3":
        where = revision.get("s3Location") or {}
        version = where.get("version")
        text = f"s3://{where.get('bucket')}/{where.get('key')}"
        return f"{text} ({version})" if version else text
    if revision.get("revisionType") == "GitHub":
        where = revision.get("gitHubLocation") or {}
        return f"{where.get('repository')}@{str(where.get('commitId', ''))[:12]}"
    if revision.get("revisionType"):
        return str(revision["revisionType"])
    return "-"


def deployment_view(
    services: Services, stored: StoredDeployment, principal: Principal
) -> dict[str, Any]:
    """Everything the deployment page shows, JSON-ready (also what the live stream sends)."""
    state = stored.state
    info = render.deployment_info(stored)
    total = len(state.targets)
    failed = sum(1 for t in state.targets.values() if t.status.value == "Failed")
    with services.db.tx() as conn:
        creator = audit.creators(conn, [state.deployment_id]).get(state.deployment_id)
    return {
        "id": state.deployment_id,
        "application": stored.application_name,
        "group": stored.group_name,
        "status": state.status.value,
        "terminal": state.status in TERMINAL_DEPLOYMENT_STATUSES,
        "createTime": state.create_time,
        "completeTime": state.complete_time,
        "revision": revision_label(info.get("revision") or {}),
        "config": info.get("deploymentConfigName", ""),
        "creator": creator or info.get("creator", ""),
        "error": info.get("errorInformation"),
        "messages": info.get("deploymentStatusMessages", []),
        "rollback": info.get("rollbackInfo") or {},
        "overview": info["deploymentOverview"],
        "health": {
            "rule": state.health_rule,
            "healthy": total - failed,
            "total": total,
        },
        "actions": [
            {
                "name": name,
                "label": ACTIONS[name].label,
                "confirm": ACTIONS[name].confirm,
                "allowed": permissions.allowed(principal, ACTIONS[name].operation),
                "needs": permissions.required_role(ACTIONS[name].operation),
            }
            for name in available(stored)
        ],
        "targets": [
            {"id": t.target_id, "status": t.status.value, "events": render.lifecycle_events(t)}
            for t in state.targets.values()
        ],
        "traffic": traffic(services, stored),
    }


def traffic(services: Services, stored: StoredDeployment) -> dict[str, Any] | None:
    """A function deployment's weights as the API reports them (``lambdaFunctionInfo``),
    with when the shift began and the server's time of this reading: the page charts
    the readings it receives, on the server's clock."""
    if stored.info.get("computePlatform") != "Lambda" or not stored.state.targets:
        return None
    target = next(iter(stored.state.targets.values()))
    wire = render.lambda_target(stored, target, services.config.region)
    return {
        **wire["lambdaTarget"]["lambdaFunctionInfo"],
        "startedAt": stored.state.shift_started,
        "at": services.clock(),
    }


def deployment_row(row: dict[str, Any], creators: dict[str, str]) -> dict[str, Any]:
    end = row["completeTime"]
    return {
        **row,
        "revisionLabel": revision_label(row["revision"]),
        "who": creators.get(row["id"]) or row["creator"] or "-",
        "duration": None if end is None else end - row["createTime"],
    }


def overview(services: Services, firing: list[tuple[str, str]]) -> dict[str, Any]:
    with services.db.tx() as conn:
        apps = resources.list_application_names(conn)
        group_docs = groups.all_deployment_groups(conn)
        active = deployment_store.active_ids(conn)
        recent = console_reads.deployments_newest_first(conn, HISTORY_ROWS)
        creators = audit.creators(conn, [r["id"] for r in recent])
    running = []
    for deployment_id in active:
        stored = services.runner.current(deployment_id)
        if stored is not None:
            counts = render.overview(stored.state)
            running.append(
                {
                    "id": deployment_id,
                    "application": stored.application_name,
                    "group": stored.group_name,
                    "status": stored.state.status.value,
                    "done": counts["Succeeded"] + counts["Failed"] + counts["Skipped"],
                    "total": len(stored.state.targets),
                    "counts": counts,
                }
            )
    by_app: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
    for doc in group_docs:
        by_app.setdefault(doc["applicationName"], []).append(
            {
                "name": doc["deploymentGroupName"],
                "last": doc.get("lastAttemptedDeployment") or {},
                "revision": revision_label(doc.get("targetRevision") or {}),
            }
        )
    return {
        "applications": sorted(by_app.items()),
        "running": running,
        "history": [deployment_row(r, creators) for r in recent],
        "firing": firing,
    }
