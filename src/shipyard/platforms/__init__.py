"""Compute platforms behind one registry.

A platform validates what a deployment to it needs, lists its lifecycle events and
says which of them the server runs itself, picks the deployment's strategy, and
renders what its hosts are told (the deployment specification). ``Server`` (hosts
running an agent), ``Lambda`` (function aliases shifted between versions) and ``ECS``
(a service's task set replaced, its load balancer's traffic shifted) are built. Adding
one is a module here plus a line in ``PLATFORMS`` (docs/contributing.md has the
checklist).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from shipyard.config import ServerConfig
from shipyard.engine.launch import LaunchRequest
from shipyard.engine.state import StoredDeployment
from shipyard.errors import UnsupportedPlatform
from shipyard.platforms.ecs_ import EcsPlatform
from shipyard.platforms.lambda_ import LambdaPlatform
from shipyard.platforms.server import BundleExists, ServerPlatform

BundleUrl = Callable[[dict[str, Any]], str]


class Platform(Protocol):
    name: str  # the computePlatform value

    def check_deployment(
        self,
        group: dict[str, Any],
        target_instances: dict[str, Any] | None,
        *,
        has_router: bool,
        defined_alarms: Collection[str],
    ) -> None:
        """Refuse (UnsupportedSetting) what this server cannot carry out for the group."""

    def check_config(self, config: dict[str, Any]) -> None:
        """Refuse a deployment config written for another platform."""

    def check_revision(self, revision: Any, exists: BundleExists) -> dict[str, Any]:
        """The revision as stored, once valid for this platform."""

    def prepare(
        self, stored: StoredDeployment, request: LaunchRequest, config: ServerConfig
    ) -> None:
        """Fill in what the platform decides on a freshly built deployment: its
        strategy and the events the server runs itself."""

    def specification(
        self, stored: StoredDeployment, config: ServerConfig, bundle_url: BundleUrl | None
    ) -> dict[str, Any]:
        """What the agent of a target is told about the deployment."""


PLATFORMS: dict[str, Platform] = {
    "Server": ServerPlatform(),
    "Lambda": LambdaPlatform(),
    "ECS": EcsPlatform(),
}
KNOWN = ("Server", "Lambda", "ECS")  # CodeDeploy's compute platforms


def get_platform(name: str) -> Platform:
    platform = PLATFORMS.get(name)
    if platform is None:
        raise UnsupportedPlatform(name)
    return platform


def platform_for_group(group: dict[str, Any]) -> Platform:
    return get_platform(str(group.get("computePlatform") or "Server"))


def platform_for_info(info: dict[str, Any]) -> Platform:
    return get_platform(str(info.get("computePlatform") or "Server"))
