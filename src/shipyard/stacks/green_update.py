"""The stack runner's part of the CodeDeploy blue/green hook (``bluegreen.py`` decides,
``providers/bluegreen.py`` deploys): whether an update is a green deployment, the
deployment document the green task set's step gets, and the deployment a step was
waiting for when the server stopped."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shipyard.stacks import bluegreen
from shipyard.stacks.prepared import Prepared
from shipyard.stacks.providers.bluegreen import RESUME

Row = dict[str, Any]


def green_hook(
    prepared: Prepared, rows: Mapping[str, Row], resolve: Callable[[Any], Any]
) -> tuple[bluegreen.Hook | None, str]:
    """The hook when this update is a green deployment (None when it applies directly),
    and the stack event's reason that says so; refuses (TemplateError) an update that
    also changes other resources."""
    hook = prepared.template.blue_green_hook
    if hook is None:
        return None, ""
    decision = bluegreen.decide(hook, bluegreen.changes(prepared.live, rows, resolve))
    if not decision.blue_green:
        return None, ""
    reason = (
        f"{hook.logical_id}: [{', '.join(decision.triggers)}] changed; the update runs as "
        "a CodeDeploy blue/green deployment"
    )
    return hook, reason


def green_policy(
    hook: bluegreen.Hook,
    stack_name: str,
    rows: Mapping[str, Row],
    props: Mapping[str, Any],
    resolve: Callable[[Any], Any],
) -> dict[str, Any]:
    """The update policy of the green task set's step: the deployment to run."""
    return {bluegreen.POLICY: bluegreen.deployment(hook, stack_name, rows, props, resolve)}


def waiting_deployment(rows: Mapping[str, Row]) -> str | None:
    """The green deployment a resource's step was waiting for when the server stopped
    (its id), if any: it carries on without the server, so the step waits again."""
    for row in rows.values():
        progress = row.get("progress") or {}
        waiting = row.get("status") == "UPDATE_IN_PROGRESS" and progress.get(RESUME)
        if waiting and progress.get("deploymentId"):
            return str(progress["deploymentId"])
    return None
