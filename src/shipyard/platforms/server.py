"""The Server platform: hosts running an agent (Shipyard's or the stock CodeDeploy
agent), deployed in place or blue/green; the server itself runs only the traffic
events, on the load balancer."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from shipyard.config import ServerConfig
from shipyard.engine.launch import LaunchRequest
from shipyard.engine.state import StoredDeployment, Strategy
from shipyard.errors import (
    ConfigForOtherPlatform,
    InvalidRevision,
    MissingRevision,
    SettingKind,
    UnsupportedSetting,
)

BundleUrl = Callable[[dict[str, Any]], str]
# Whether the built-in store holds a bundle (None: the store is external, not asked).
BundleExists = Callable[[dict[str, Any]], bool | None]

BUNDLE_TYPES = ("tar", "tgz", "zip")
REPOSITORY_RE = re.compile(r"[^/\s]+/[^/\s]+")

# BlockTraffic and AllowTraffic move a host's traffic on the load balancer.
SERVER_EVENTS = ("BlockTraffic", "AllowTraffic")


class ServerPlatform:
    name = "Server"

    def check_deployment(
        self,
        group: dict[str, Any],
        target_instances: dict[str, Any] | None,
        *,
        has_router: bool,
        defined_alarms: Collection[str],
    ) -> None:
        _check_targets(group)
        _check_style(group, target_instances, has_router)
        check_alarms(group, defined_alarms)
        check_triggers(group)

    def check_config(self, config: dict[str, Any]) -> None:
        platform = config.get("computePlatform", "Server")
        if platform != "Server":
            raise ConfigForOtherPlatform(config["deploymentConfigName"], platform, "servers")

    def check_revision(self, revision: Any, exists: BundleExists) -> dict[str, Any]:
        """The revision, validated; a bundle in the built-in store is checked to exist."""
        if not isinstance(revision, dict):
            raise InvalidRevision("revision must be an object")
        kind = revision.get("revisionType")
        if kind == "S3":
            return {"revisionType": "S3", "s3Location": _s3_location(revision, exists)}
        if kind == "GitHub":
            loc = revision.get("gitHubLocation")
            if not isinstance(loc, dict) or not loc.get("commitId"):
                raise InvalidRevision(
                    "A GitHub revision needs gitHubLocation with repository and commitId"
                )
            if not REPOSITORY_RE.fullmatch(str(loc.get("repository", ""))):
                raise InvalidRevision("gitHubLocation.repository must look like account/repository")
            return {"revisionType": "GitHub", "gitHubLocation": dict(loc)}
        if kind in ("String", "AppSpecContent"):
            raise InvalidRevision(f"revisionType {kind} is for Lambda and ECS, not servers")
        raise InvalidRevision(f"revisionType must be S3 or GitHub; got {kind!r}")

    def prepare(
        self, stored: StoredDeployment, request: LaunchRequest, config: ServerConfig
    ) -> None:
        state = stored.state
        if state.strategy != Strategy.BLUE_GREEN:
            state.strategy = Strategy.IN_PLACE
        state.server_events = list(SERVER_EVENTS)

    def specification(
        self, stored: StoredDeployment, config: ServerConfig, bundle_url: BundleUrl | None
    ) -> dict[str, Any]:
        info = stored.info
        revision = info.get("revision") or {}
        style = info.get("deploymentStyle") or {}
        payload: dict[str, Any] = {
            "DeploymentId": stored.state.deployment_id,
            "DeploymentGroupId": info["deploymentGroupId"],
            "DeploymentGroupName": stored.group_name,
            "ApplicationName": stored.application_name,
            "DeploymentCreator": info.get("creator", "user"),
            "DeploymentType": style.get("deploymentType", "IN_PLACE"),
            "AppSpecFilename": "appspec.yml",
            "AgentActionOverrides": {
                "AgentOverrides": {"FileExistsBehavior": info.get("fileExistsBehavior", "DISALLOW")}
            },
            "MaxBundleBytes": config.max_bundle_bytes,
        }
        if revision.get("revisionType") == "S3":
            loc = revision["s3Location"]
            s3: dict[str, Any] = {
                "Bucket": loc["bucket"],
                "Key": loc["key"],
                "BundleType": loc.get("bundleType", "zip"),
            }
            if loc.get("version"):
                s3["Version"] = loc["version"]
            if loc.get("eTag"):
                s3["ETag"] = loc["eTag"]
            payload["Revision"] = {"RevisionType": "S3", "S3Revision": s3}
            if bundle_url is not None:
                payload["BundleUrl"] = bundle_url(loc)
        elif revision.get("revisionType") == "GitHub":
            loc = revision["gitHubLocation"]
            account, _, repo = loc["repository"].partition("/")
            payload["Revision"] = {
                "RevisionType": "GitHub",
                "GitHubRevision": {
                    "Account": account,
                    "Repository": repo,
                    "CommitId": loc["commitId"],
                    "BundleType": "tar",
                },
            }
            payload["GitUrl"] = f"{config.git_base_url.rstrip('/')}/{loc['repository']}"
        return payload


def _s3_location(revision: dict[str, Any], exists: BundleExists) -> dict[str, Any]:
    loc = revision.get("s3Location")
    if not isinstance(loc, dict) or not loc.get("bucket") or not loc.get("key"):
        raise InvalidRevision("An S3 revision needs s3Location with bucket and key")
    bundle_type = loc.get("bundleType")
    if bundle_type not in BUNDLE_TYPES:
        raise InvalidRevision(
            f"bundleType must be one of {', '.join(BUNDLE_TYPES)} for servers; got {bundle_type!r}"
        )
    if exists(loc) is False:
        version = f" version {loc['version']}" if loc.get("version") else ""
        raise MissingRevision(f"No bundle at s3://{loc['bucket']}/{loc['key']}{version}")
    return dict(loc)


def _check_targets(group: dict[str, Any]) -> None:
    ec2 = group.get("ec2TagFilters") or (group.get("ec2TagSet") or {}).get("ec2TagSetList")
    if ec2:
        raise UnsupportedSetting(
            SettingKind.TARGETS,
            "The group targets EC2 instances by tag, which this server cannot look up: "
            "register the hosts (shipyard instance register NAME --tag KEY=VALUE) and "
            "target them with onPremisesInstanceTagFilters",
        )
    if group.get("autoScalingGroups"):
        raise UnsupportedSetting(
            SettingKind.AUTO_SCALING,
            "The group names Auto Scaling groups, which this server does not manage: "
            "register the hosts and target them by on-premises tags",
        )


def _check_style(
    group: dict[str, Any], target_instances: dict[str, Any] | None, has_router: bool
) -> None:
    style = group.get("deploymentStyle") or {}
    traffic = style.get("deploymentOption") == "WITH_TRAFFIC_CONTROL"
    if traffic and not has_router:
        raise UnsupportedSetting(
            SettingKind.LOAD_BALANCER,
            "The group deploys WITH_TRAFFIC_CONTROL but this server has no load balancer "
            "configured (shipyard server --traffic-router haproxy --traffic-address ...)",
        )
    if style.get("deploymentType") != "BLUE_GREEN":
        return
    blue_green = group.get("blueGreenDeploymentConfiguration") or {}
    provisioning = blue_green.get("greenFleetProvisioningOption") or {}
    if provisioning.get("action") == "COPY_AUTO_SCALING_GROUP":
        return  # the server provisions the replacement hosts
    if not (target_instances or {}).get("tagFilters"):
        raise UnsupportedSetting(
            SettingKind.TARGETS,
            "A blue/green deployment needs targetInstances.tagFilters naming the replacement hosts",
        )


def check_shift_group(
    group: dict[str, Any],
    target_instances: dict[str, Any] | None,
    defined_alarms: Collection[str],
    platform: str,
    named_by: str,
) -> None:
    """What a traffic-shift platform (Lambda, ECS) asks of any group: blue/green with
    traffic control, no replacement hosts (``named_by`` says what names the target),
    alarms and triggers this server can carry out."""
    style = group.get("deploymentStyle") or {}
    if (style.get("deploymentType"), style.get("deploymentOption")) != (
        "BLUE_GREEN",
        "WITH_TRAFFIC_CONTROL",
    ):
        raise UnsupportedSetting(
            SettingKind.TARGETS,
            f"A {platform} deployment group deploys BLUE_GREEN WITH_TRAFFIC_CONTROL",
        )
    if target_instances:
        raise UnsupportedSetting(
            SettingKind.TARGETS, f"A {platform} deployment takes no targetInstances: {named_by}"
        )
    check_alarms(group, defined_alarms)
    check_triggers(group)


def check_alarms(group: dict[str, Any], defined: Collection[str]) -> None:
    config = group.get("alarmConfiguration") or {}
    if not config.get("enabled") or config.get("ignorePollAlarmFailure"):
        return  # an alarm that cannot be read is then passed over, as CodeDeploy does
    unknown = [a["name"] for a in config.get("alarms") or [] if a["name"] not in defined]
    if unknown:
        raise UnsupportedSetting(
            SettingKind.ALARMS,
            f"Alarm(s) {', '.join(unknown)} are not defined on this server (CloudWatch "
            "alarms are not read): define them with shipyard alarm put",
        )


def check_triggers(group: dict[str, Any]) -> None:
    for trigger in group.get("triggerConfigurations") or []:
        target = str(trigger.get("triggerTargetArn", ""))
        if not target.startswith(("http://", "https://")):
            raise UnsupportedSetting(
                SettingKind.TRIGGERS,
                f"Trigger {trigger.get('triggerName')} sends to {target}: this server "
                "delivers triggers to http(s) webhook URLs only (SNS topics are not supported)",
            )
