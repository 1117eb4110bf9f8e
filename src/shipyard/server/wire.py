"""Domain errors on the wire: the one place that names each by its AWS error."""

from __future__ import annotations

from shipyard.errors import (
    ApiError,
    BadCommandStatus,
    CommandFinished,
    ConfigForOtherPlatform,
    DeploymentGroupBusy,
    DomainError,
    InvalidRevision,
    MissingRevision,
    NoSuchDeploymentGroup,
    NothingToRollBack,
    SettingKind,
    UnknownExecution,
    UnknownHostCommand,
    UnsupportedPlatform,
    UnsupportedSetting,
)

WIRE_NAMES: dict[type[DomainError], str] = {
    DeploymentGroupBusy: "DeploymentLimitExceededException",
    NoSuchDeploymentGroup: "DeploymentGroupDoesNotExistException",
    NothingToRollBack: "RevisionDoesNotExistException",
    UnknownHostCommand: "ClientException",
    UnknownExecution: "ClientException",
    BadCommandStatus: "ClientException",
    CommandFinished: "ClientException",
    UnsupportedPlatform: "InvalidComputePlatformException",
    InvalidRevision: "InvalidRevisionException",
    MissingRevision: "RevisionDoesNotExistException",
    ConfigForOtherPlatform: "InvalidDeploymentConfigNameException",
}

SETTING_NAMES: dict[SettingKind, str] = {
    SettingKind.TARGETS: "InvalidTargetInstancesException",
    SettingKind.AUTO_SCALING: "InvalidAutoScalingGroupException",
    SettingKind.LOAD_BALANCER: "InvalidLoadBalancerInfoException",
    SettingKind.ALARMS: "InvalidAlarmConfigException",
    SettingKind.TRIGGERS: "InvalidInputException",
    SettingKind.ECS_SERVICE: "InvalidECSServiceException",
    SettingKind.TARGET_GROUP_PAIR: "InvalidTargetGroupPairException",
}


def to_api_error(exc: DomainError) -> ApiError:
    if isinstance(exc, UnsupportedSetting):
        return ApiError(SETTING_NAMES[exc.kind], exc.message)
    for kind in type(exc).__mro__:
        name = WIRE_NAMES.get(kind)
        if name is not None:
            return ApiError(name, exc.message)
    return ApiError("InvalidInputException", exc.message)
