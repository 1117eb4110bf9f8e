"""The load balancer side of an ECS deployment, through a boto3 ``elbv2`` client: the
target group pair by name, the listeners, and their forward actions' weights.

Both target groups always stay in a listener's forward action (the one losing traffic at
weight 0), so the pair stays attached to the load balancer and health-checked, as
CodeDeploy leaves it (reference aws-services.md §4.6 (e)).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shipyard.errors import SettingKind, ShipyardError, UnsupportedSetting
from shipyard.platforms.ecs_target import EcsTarget
from shipyard.platforms.lambda_backend import error_code, error_text

FULL = 100


class EcsBackendError(ShipyardError):
    """The ECS or ELBv2 API refused or could not be reached; the message says which call."""


def call_api(
    name: str, call: Callable[[], Any], missing: tuple[SettingKind, str] | None = None
) -> Any:
    """``call()``; its errors as EcsBackendError, or as UnsupportedSetting of
    ``missing[0]`` when the error code is ``missing[1]`` (a resource the group names is
    not there)."""
    try:
        return call()
    except ClientError as exc:
        if missing is not None and error_code(exc) in (missing[1], missing[1] + "Exception"):
            raise UnsupportedSetting(missing[0], f"{name}: {error_text(exc)}") from None
        raise EcsBackendError(f"{name}: {error_text(exc)}") from None
    except BotoCoreError as exc:
        raise EcsBackendError(f"{name}: {exc}") from None


class Routes:
    def __init__(self, elbv2: Any) -> None:
        self.elbv2 = elbv2

    def target_group_arns(self, target: EcsTarget) -> dict[str, str]:
        """The pair's target groups, name -> ARN."""
        found = call_api(
            "DescribeTargetGroups",
            lambda: self.elbv2.describe_target_groups(Names=list(target.target_groups)),
            missing=(SettingKind.TARGET_GROUP_PAIR, "TargetGroupNotFound"),
        )
        return {g["TargetGroupName"]: g["TargetGroupArn"] for g in found["TargetGroups"]}

    def listeners(self, arns: tuple[str, ...]) -> list[dict[str, Any]]:
        if not arns:
            return []
        found = call_api(
            "DescribeListeners",
            lambda: self.elbv2.describe_listeners(ListenerArns=list(arns)),
            missing=(SettingKind.TARGET_GROUP_PAIR, "ListenerNotFound"),
        )
        return list(found["Listeners"])

    def shares(self, target: EcsTarget) -> dict[str, int]:
        """Target group ARN -> percent of the production route's traffic now."""
        listeners = self.listeners(target.prod_listeners[:1])
        if not listeners:
            return {}
        weights = forward_weights(listeners[0])
        total = sum(weights.values()) or 1
        return {arn: round(weight * FULL / total) for arn, weight in weights.items()}

    def forward(self, listeners: tuple[str, ...], old: str, new: str, weight: int) -> None:
        """Each listener's forward action: ``weight`` to ``new``, the rest to ``old``
        (its other actions as they were)."""
        groups = [
            {"TargetGroupArn": old, "Weight": FULL - weight},
            {"TargetGroupArn": new, "Weight": weight},
        ]
        for listener in self.listeners(listeners):
            actions = [
                _forwarding(action, groups) if action.get("Type") == "forward" else action
                for action in listener.get("DefaultActions") or []
            ]
            modify = functools.partial(
                self.elbv2.modify_listener,
                ListenerArn=listener["ListenerArn"],
                DefaultActions=actions,
            )
            call_api("ModifyListener", modify)


def forward_weights(listener: dict[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight in the listener's forward action."""
    for action in listener.get("DefaultActions") or []:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {action["TargetGroupArn"]: 1}
    return {}


def _forwarding(action: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
    kept = {k: v for k, v in action.items() if k not in ("TargetGroupArn", "ForwardConfig")}
    config = dict(action.get("ForwardConfig") or {})
    config["TargetGroups"] = groups
    return {**kept, "ForwardConfig": config}
