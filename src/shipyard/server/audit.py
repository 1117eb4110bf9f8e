"""Recording a successful changing call in the audit list: who, what, on what, when.

The subject is what the request (or its answer) names, most specific first: a
deployment, else a deployment group, else an application, else any other name member.
"""

from __future__ import annotations

from typing import Any

from shipyard.server.context import Principal, Services
from shipyard.store import audit

_NAME_MEMBERS = ("alarmName", "deploymentConfigName", "instanceName", "resourceArn", "userName")


def subject(body: dict[str, Any], answer: dict[str, Any]) -> str:
    deployment = (
        answer.get("deploymentId") or answer.get("rollbackDeploymentId") or body.get("deploymentId")
    )
    if isinstance(deployment, str) and deployment:
        return f"deployment/{deployment}"
    app = body.get("applicationName")
    group = body.get("deploymentGroupName") or body.get("currentDeploymentGroupName")
    if isinstance(app, str) and isinstance(group, str):
        return f"group/{app}/{group}"
    if isinstance(app, str):
        return f"application/{app}"
    for member in _NAME_MEMBERS:
        value = body.get(member)
        if isinstance(value, str) and value:
            return f"{member.removesuffix('Name').removesuffix('Arn')}/{value}"
    return ""


def record(
    services: Services,
    principal: Principal,
    action: str,
    body: dict[str, Any],
    answer: dict[str, Any],
) -> None:
    with services.db.tx() as conn:
        audit.record(
            conn,
            services.clock(),
            principal.kind,
            principal.name,
            action,
            subject(body, answer),
        )
