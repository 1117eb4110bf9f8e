"""The Lambda platform: a deployment moves a function alias's traffic from the
appspec's CurrentVersion to its TargetVersion on the config's schedule (canary, linear,
all at once), with hook functions before and after (reference codedeploy.md §3.2,
aws-services.md §3).

The target is the alias (``function:alias``); its events are BeforeAllowTraffic,
AllowTraffic (the shift) and AfterAllowTraffic, all run by the server
(``lambda_steps``); the strategy is the traffic shift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from typing import Any

from shipyard.config import ServerConfig
from shipyard.engine.launch import LaunchRequest, PlatformTargets
from shipyard.engine.lifecycle import LAMBDA
from shipyard.engine.state import StoredDeployment, Strategy
from shipyard.errors import (
    ConfigForOtherPlatform,
    InvalidRevision,
    MissingRevision,
    SettingKind,
    UnsupportedSetting,
)
from shipyard.platforms import lambda_appspec
from shipyard.platforms.lambda_appspec import LambdaAppSpec
from shipyard.platforms.server import BundleExists, check_alarms, check_triggers

BUNDLE_TYPES = ("YAML", "JSON")
# The deployment info member (kept out of the wire shape) holding the parsed appspec.
INFO_KEY = "lambdaAppSpec"
# The text of an S3 appspec in the built-in store (None: no such object).
ReadAppSpec = Callable[[dict[str, Any]], str | None]


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
        style = group.get("deploymentStyle") or {}
        if (style.get("deploymentType"), style.get("deploymentOption")) != (
            "BLUE_GREEN",
            "WITH_TRAFFIC_CONTROL",
        ):
            raise UnsupportedSetting(
                SettingKind.TARGETS,
                "A Lambda deployment group deploys BLUE_GREEN WITH_TRAFFIC_CONTROL",
            )
        if target_instances:
            raise UnsupportedSetting(
                SettingKind.TARGETS,
                "A Lambda deployment takes no targetInstances: the appspec names the function",
            )
        check_alarms(group, defined_alarms)
        check_triggers(group)

    def check_config(self, config: dict[str, Any]) -> None:
        platform = config.get("computePlatform", "Server")
        if platform != "Lambda":
            raise ConfigForOtherPlatform(config["deploymentConfigName"], platform, "functions")

    def check_revision(self, revision: Any, exists: BundleExists) -> dict[str, Any]:
        if not isinstance(revision, dict):
            raise InvalidRevision("revision must be an object")
        kind = revision.get("revisionType")
        if kind in ("AppSpecContent", "String"):
            member = "appSpecContent" if kind == "AppSpecContent" else "string"
            content = _content(revision.get(member), member)
            lambda_appspec.parse(content["content"])
            return {"revisionType": kind, member: content}
        if kind == "S3":
            return {"revisionType": "S3", "s3Location": _s3_location(revision, exists)}
        raise InvalidRevision(
            f"revisionType must be AppSpecContent, String or S3 for Lambda; got {kind!r}"
        )

    def appspec(self, revision: dict[str, Any], read: ReadAppSpec) -> LambdaAppSpec:
        """The revision's appspec, parsed (an S3 one read from the store)."""
        kind = revision["revisionType"]
        if kind == "S3":
            loc = revision["s3Location"]
            text = read(loc)
            if text is None:
                raise MissingRevision(f"No appspec at s3://{loc['bucket']}/{loc['key']}")
            return lambda_appspec.parse(text)
        member = "appSpecContent" if kind == "AppSpecContent" else "string"
        return lambda_appspec.parse(revision[member]["content"])

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


def _content(value: Any, member: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("content"), str):
        raise InvalidRevision(f"revision.{member}.content must be the appspec's text")
    content = value["content"]
    given = value.get("sha256")
    if given is not None:
        actual = hashlib.sha256(content.encode()).hexdigest()
        if not isinstance(given, str) or given.lower() != actual:
            raise InvalidRevision(
                f"revision.{member}.sha256 does not match the content (its SHA-256 is {actual})"
            )
    return {"content": content, **({"sha256": given} if given is not None else {})}


def _s3_location(revision: dict[str, Any], exists: BundleExists) -> dict[str, Any]:
    loc = revision.get("s3Location")
    if not isinstance(loc, dict) or not loc.get("bucket") or not loc.get("key"):
        raise InvalidRevision("An S3 revision needs s3Location with bucket and key")
    if loc.get("bundleType") not in BUNDLE_TYPES:
        raise InvalidRevision(
            f"bundleType must be YAML or JSON for Lambda; got {loc.get('bundleType')!r}"
        )
    if exists(loc) is False:
        raise MissingRevision(f"No appspec at s3://{loc['bucket']}/{loc['key']}")
    return dict(loc)
