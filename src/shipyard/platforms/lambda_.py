"""The Lambda platform: a deployment moves a function alias's traffic from the
appspec's CurrentVersion to its TargetVersion on the config's schedule (canary, linear,
all at once), with hook functions before and after (reference codedeploy.md §3.2,
aws-services.md §3).

The target is the alias (``function:alias``); its events are BeforeAllowTraffic,
AllowTraffic (the shift) and AfterAllowTraffic, all run by the server
(``lambda_steps``); the strategy is the traffic shift.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shipyard.config import ServerConfig
from shipyard.engine.launch import LaunchRequest, PlatformTargets
from shipyard.engine.lifecycle import LAMBDA
from shipyard.engine.state import StoredDeployment, Strategy
from shipyard.errors import (
    ConfigForOtherPlatform,
    InvalidRevision,
)
from shipyard.platforms import appspec_revision, lambda_appspec
from shipyard.platforms.appspec_revision import ReadAppSpec
from shipyard.platforms.lambda_appspec import LambdaAppSpec
from shipyard.platforms.server import BundleExists, check_shift_group

# The deployment info member (kept out of the wire shape) holding the parsed appspec.
INFO_KEY = "lambdaAppSpec"


class LambdaPlatform:
    name = "Lambda"

    def check_deployment(
        self,
        group: dict[str, Any],
        target_instances: dict[str, Any] | None,
        *,
        has_router: bool,
        defined_alarms: Collection[str],
    ) -> None:
        check_shift_group(
            group, target_instances, defined_alarms, "Lambda", "the appspec names the function"
        )

    def check_config(self, config: dict[str, Any]) -> None:
        platform = config.get("computePlatform", "Server")
        if platform != "Lambda":
            raise ConfigForOtherPlatform(config["deploymentConfigName"], platform, "functions")

    def check_revision(self, revision: Any, exists: BundleExists) -> dict[str, Any]:
        checked = appspec_revision.check(revision, exists, "Lambda", ("AppSpecContent", "String"))
        inline = appspec_revision.inline_text(checked)
        if inline is not None:
            lambda_appspec.parse(inline)
        return checked

    def appspec(self, revision: dict[str, Any], read: ReadAppSpec) -> LambdaAppSpec:
        """The revision's appspec, parsed (an S3 one read from the store)."""
        return lambda_appspec.parse(appspec_revision.text(revision, read))

    def targets(self, spec: LambdaAppSpec) -> PlatformTargets:
        doc = {
            "functionName": spec.function,
            "functionAlias": spec.alias,
            "currentVersion": spec.current_version,
            "targetVersion": spec.target_version,
            "hooks": dict(spec.hooks),
        }
        return PlatformTargets((spec.target_id,), LAMBDA, {INFO_KEY: doc})

    def prepare(
        self, stored: StoredDeployment, request: LaunchRequest, config: ServerConfig
    ) -> None:
        state = stored.state
        state.strategy = Strategy.TRAFFIC_SHIFT
        state.server_events = list(LAMBDA)
        state.routing = dict(request.config.get("trafficRoutingConfig") or {"type": "AllAtOnce"})
        state.minute_seconds = config.minute_seconds
        # A hook has this long to report; the shift's last step as long to be applied.
        state.event_timeout = config.hook_timeout

    def specification(
        self, stored: StoredDeployment, config: ServerConfig, bundle_url: Any
    ) -> dict[str, Any]:
        raise InvalidRevision("Lambda deployments have no agent")


def appspec_of(stored: StoredDeployment) -> LambdaAppSpec:
    """The parsed appspec a Lambda deployment was created with."""
    doc = stored.info[INFO_KEY]
    return LambdaAppSpec(
        doc["functionName"],
        doc["functionAlias"],
        doc["currentVersion"],
        doc["targetVersion"],
        dict(doc.get("hooks") or {}),
    )
