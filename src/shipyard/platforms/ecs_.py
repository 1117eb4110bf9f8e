"""The ECS platform: a deployment replaces a CODE_DEPLOY service's task set, with test
traffic first and production traffic shifted on the config's schedule (canary, linear,
all at once), hook functions between (reference codedeploy.md §3.3, aws-services.md
§4.5-4.6).

The target is the service (``cluster:service``); its events (``lifecycle.ECS``) are
all run by the server (``ecs_steps``); the strategy is the traffic shift, with the
group's ready wait before production traffic moves and its termination wait before
the original task set is deleted.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shipyard.config import ServerConfig
from shipyard.engine.launch import LaunchRequest, PlatformTargets
from shipyard.engine.lifecycle import ECS
from shipyard.engine.state import StoredDeployment, Strategy
from shipyard.errors import (
    ConfigForOtherPlatform,
    InvalidRevision,
    SettingKind,
    UnsupportedSetting,
)
from shipyard.platforms import appspec_revision, ecs_appspec
from shipyard.platforms.appspec_revision import ReadAppSpec
from shipyard.platforms.ecs_appspec import EcsAppSpec
from shipyard.platforms.ecs_target import EcsTarget
from shipyard.platforms.server import BundleExists, check_shift_group

# The deployment info members (kept out of the wire shape): the parsed appspec and the
# service with its target groups and listeners as the group named them at creation.
APPSPEC_KEY = "ecsAppSpec"
TARGET_KEY = "ecsTarget"


class EcsPlatform:
    name = "ECS"

    def check_deployment(
        self,
        group: dict[str, Any],
        target_instances: dict[str, Any] | None,
        *,
        has_router: bool,
        defined_alarms: Collection[str],
    ) -> None:
        check_shift_group(
            group, target_instances, defined_alarms, "ECS", "the group names the service"
        )
        check_group_shape(group)

    def check_config(self, config: dict[str, Any]) -> None:
        platform = config.get("computePlatform", "Server")
        if platform != "ECS":
            raise ConfigForOtherPlatform(config["deploymentConfigName"], platform, "containers")

    def check_revision(self, revision: Any, exists: BundleExists) -> dict[str, Any]:
        checked = appspec_revision.check(revision, exists, "ECS", ("AppSpecContent",))
        inline = appspec_revision.inline_text(checked)
        if inline is not None:
            ecs_appspec.parse(inline)
        return checked

    def appspec(self, revision: dict[str, Any], read: ReadAppSpec) -> EcsAppSpec:
        """The revision's appspec, parsed (an S3 one read from the store)."""
        return ecs_appspec.parse(appspec_revision.text(revision, read))

    def targets(self, spec: EcsAppSpec, target: EcsTarget) -> PlatformTargets:
        info = {APPSPEC_KEY: spec.to_doc(), TARGET_KEY: target.to_doc()}
        return PlatformTargets((target.target_id,), ECS, info)

    def prepare(
        self, stored: StoredDeployment, request: LaunchRequest, config: ServerConfig
    ) -> None:
        state = stored.state
        state.strategy = Strategy.TRAFFIC_SHIFT
        state.server_events = list(ECS)
        state.routing = dict(request.config.get("trafficRoutingConfig") or {"type": "AllAtOnce"})
        state.minute_seconds = config.minute_seconds
        # A hook has this long to report, Install this long to be steady.
        state.event_timeout = config.hook_timeout
        options = request.group.get("blueGreenDeploymentConfiguration") or {}
        ready = options.get("deploymentReadyOption") or {}
        if ready.get("actionOnTimeout") == "STOP_DEPLOYMENT":
            state.ready_wait = float(ready.get("waitTimeInMinutes", 0)) * config.minute_seconds
        terminate = options.get("terminateBlueInstancesOnDeploymentSuccess") or {}
        # ECS always deletes the original task set; the wait defaults to none.
        minutes = float(terminate.get("terminationWaitTimeInMinutes", 0))
        state.terminate_wait = minutes * config.minute_seconds
        stored.info["blueGreenDeploymentConfiguration"] = options
        stored.info["instanceTerminationWaitTimeStarted"] = False

    def specification(
        self, stored: StoredDeployment, config: ServerConfig, bundle_url: Any
    ) -> dict[str, Any]:
        raise InvalidRevision("ECS deployments have no agent")


def check_group_shape(group: dict[str, Any]) -> None:
    """What an ECS group needs before the backend is asked: one service, and one target
    group pair with two target groups and a production listener."""
    if len(group.get("ecsServices") or []) != 1:
        raise UnsupportedSetting(
            SettingKind.ECS_SERVICE, "An ECS deployment group names exactly one ECS service"
        )
    pairs = (group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or []
    if len(pairs) != 1 or len(pairs[0].get("targetGroups") or []) != 2:
        raise UnsupportedSetting(
            SettingKind.TARGET_GROUP_PAIR,
            "An ECS deployment group needs loadBalancerInfo.targetGroupPairInfoList with one "
            "pair of two target groups",
        )
    if not (pairs[0].get("prodTrafficRoute") or {}).get("listenerArns"):
        raise UnsupportedSetting(
            SettingKind.TARGET_GROUP_PAIR, "The target group pair needs a prodTrafficRoute listener"
        )
    terminate = (group.get("blueGreenDeploymentConfiguration") or {}).get(
        "terminateBlueInstancesOnDeploymentSuccess"
    ) or {}
    if terminate.get("action") == "KEEP_ALIVE":
        raise UnsupportedSetting(
            SettingKind.TARGETS,
            "ECS deletes the original task set after the deployment: "
            "terminateBlueInstancesOnDeploymentSuccess.action must be TERMINATE",
        )


def appspec_of(stored: StoredDeployment) -> EcsAppSpec:
    return EcsAppSpec.from_doc(stored.info[APPSPEC_KEY])


def target_of(stored: StoredDeployment) -> EcsTarget:
    return EcsTarget.from_doc(stored.info[TARGET_KEY])
