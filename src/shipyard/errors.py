"""Errors Shipyard raises on purpose.

    ShipyardError                 base of everything raised on purpose
    ├── ApiError                  rendered as the AWS JSON error shape, HTTP 400
    │   (name = the model's exception name, e.g. "ApplicationDoesNotExistException")
    └── DomainError               a refusal decided below the API (runner, platforms);
        ├── DeploymentGroupBusy   server/wire.py maps each to its AWS error name
        ├── NoSuchDeploymentGroup
        ├── NothingToRollBack
        ├── UnknownHostCommand
        ├── UnknownExecution
        ├── BadCommandStatus
        ├── UnsupportedPlatform
        ├── UnsupportedSetting
        ├── InvalidRevision
        ├── MissingRevision
        └── ConfigForOtherPlatform

A failed deployment is never an exception: it is a status plus an ErrorCode
(see model.ErrorCode). Agent-side failures are results with a LifecycleErrorCode.
"""

from __future__ import annotations

from enum import StrEnum


class ShipyardError(Exception):
    """Base class for errors Shipyard raises deliberately."""


class ApiError(ShipyardError):
    """An error answered to an API caller as ``{"__type": name, "message": ...}``."""

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.status = status


def api_error(name: str, message: str) -> ApiError:
    """Shorthand: ``raise api_error("InvalidApplicationNameException", "...")``."""
    return ApiError(name, message)


class DomainError(ShipyardError):
    """A refusal with a message for the caller; its wire name is server/'s business."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DeploymentGroupBusy(DomainError):
    def __init__(self, group_name: str, active: str) -> None:
        super().__init__(
            f"The Deployment Group '{group_name}' already has an active Deployment '{active}'"
        )


class NoSuchDeploymentGroup(DomainError):
    def __init__(self, app: str, group_name: str) -> None:
        super().__init__(f"No deployment group {group_name} in application {app}")


class NothingToRollBack(DomainError):
    """A manual rollback has no revision to go back to."""


class UnknownHostCommand(DomainError):
    def __init__(self, command_id: int) -> None:
        super().__init__(f"Unknown host command {command_id}")


class UnknownExecution(DomainError):
    def __init__(self, execution: str) -> None:
        super().__init__(f"Unknown deployment execution {execution!r}")


class CommandFinished(DomainError):
    """Output for a host command that is not running (finished, or never handed out)."""

    def __init__(self, command_id: int, status: str) -> None:
        super().__init__(f"Host command {command_id} is {status}: it takes no more output")


class BadCommandStatus(DomainError):
    def __init__(self, status: str) -> None:
        super().__init__(f"CommandStatus must be Succeeded or Failed: {status}")


class UnsupportedPlatform(DomainError):
    def __init__(self, platform: str) -> None:
        super().__init__(
            f"The compute platform {platform} is not supported on this Shipyard server "
            "(supported: Server, Lambda, ECS)"
        )


class SettingKind(StrEnum):
    """Which part of a deployment group a refused setting belongs to."""

    TARGETS = "targets"  # EC2 tag filters and tag sets, replacement hosts
    AUTO_SCALING = "auto_scaling"  # Auto Scaling groups
    LOAD_BALANCER = "load_balancer"  # loadBalancerInfo without a router to carry it out
    ALARMS = "alarms"  # CloudWatch alarm names
    TRIGGERS = "triggers"  # SNS trigger targets
    ECS_SERVICE = "ecs_service"  # a cluster or service the container backend refuses
    TARGET_GROUP_PAIR = "target_group_pair"  # target groups and listeners of an ECS group


class UnsupportedSetting(DomainError):
    """A setting Shipyard stores but cannot carry out on this server."""

    def __init__(self, kind: SettingKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class InvalidRevision(DomainError):
    """A revision location the platform cannot deploy."""


class MissingRevision(DomainError):
    """The revision's bundle is not where it says."""


class ConfigForOtherPlatform(DomainError):
    def __init__(self, name: str, config_platform: str, platform: str) -> None:
        super().__init__(f"{name} is a {config_platform} config; this group deploys to {platform}")
