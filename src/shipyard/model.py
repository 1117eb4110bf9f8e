"""Domain vocabulary shared by the server, engine, store and agent.

Enum values are spelled exactly as the CodeDeploy model spells them, because they
travel unchanged over the API.
"""

from __future__ import annotations

import string
import time
import uuid
from enum import StrEnum


class DeploymentStatus(StrEnum):
    CREATED = "Created"
    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    BAKING = "Baking"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"
    READY = "Ready"


TERMINAL_DEPLOYMENT_STATUSES = frozenset(
    {DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED, DeploymentStatus.STOPPED}
)


class TargetStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNKNOWN = "Unknown"
    READY = "Ready"


class LifecycleEventStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    UNKNOWN = "Unknown"


class LifecycleErrorCode(StrEnum):
    SUCCESS = "Success"
    SCRIPT_MISSING = "ScriptMissing"
    SCRIPT_NOT_EXECUTABLE = "ScriptNotExecutable"
    SCRIPT_TIMED_OUT = "ScriptTimedOut"
    SCRIPT_FAILED = "ScriptFailed"
    UNKNOWN_ERROR = "UnknownError"


# The agent reports numeric codes (the stock agent's ScriptError numbering);
# 6 (output left open) and 7 (failed after agent restart) have no public name.
AGENT_ERROR_CODES: dict[int, LifecycleErrorCode] = {
    0: LifecycleErrorCode.SUCCESS,
    1: LifecycleErrorCode.SCRIPT_MISSING,
    2: LifecycleErrorCode.SCRIPT_NOT_EXECUTABLE,
    3: LifecycleErrorCode.SCRIPT_TIMED_OUT,
    4: LifecycleErrorCode.SCRIPT_FAILED,
    5: LifecycleErrorCode.UNKNOWN_ERROR,
    6: LifecycleErrorCode.SCRIPT_FAILED,
    7: LifecycleErrorCode.UNKNOWN_ERROR,
}


class ErrorCode(StrEnum):
    """Deployment-level error codes (errorInformation.code)."""

    AGENT_ISSUE = "AGENT_ISSUE"
    ALARM_ACTIVE = "ALARM_ACTIVE"
    APPLICATION_MISSING = "APPLICATION_MISSING"
    DEPLOYMENT_GROUP_MISSING = "DEPLOYMENT_GROUP_MISSING"
    ECS_UPDATE_ERROR = "ECS_UPDATE_ERROR"
    HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
    HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
    HOOK_EXECUTION_FAILURE = "HOOK_EXECUTION_FAILURE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_REVISION = "INVALID_REVISION"
    MANUAL_STOP = "MANUAL_STOP"
    NO_INSTANCES = "NO_INSTANCES"
    OVER_MAX_INSTANCES = "OVER_MAX_INSTANCES"
    REVISION_MISSING = "REVISION_MISSING"
    TIMEOUT = "TIMEOUT"


class ComputePlatform(StrEnum):
    SERVER = "Server"
    LAMBDA = "Lambda"
    ECS = "ECS"


class FileExistsBehavior(StrEnum):
    DISALLOW = "DISALLOW"
    OVERWRITE = "OVERWRITE"
    RETAIN = "RETAIN"


class DeploymentCreator(StrEnum):
    USER = "user"
    AUTOSCALING = "autoscaling"
    ROLLBACK = "codeDeployRollback"
    CODEDEPLOY = "CodeDeploy"
    AUTO_UPDATE = "CodeDeployAutoUpdate"
    CLOUDFORMATION = "CloudFormation"
    CLOUDFORMATION_ROLLBACK = "CloudFormationRollback"
    AUTOSCALING_TERMINATION = "autoscalingTermination"


class CommandStatus(StrEnum):
    """Status of one host command in the agent protocol."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


# Lifecycle events the agent carries out itself (no scripts) or hooks it runs.
AGENT_BUILTIN_COMMANDS = frozenset({"DownloadBundle", "Install"})
HOOK_COMMANDS = frozenset(
    {
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "ValidateService",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    }
)

ACCOUNT_ID = "000000000000"

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_deployment_id() -> str:
    """``d-`` followed by nine upper-case alphanumerics, like CodeDeploy's."""
    # Imported here: ``secrets`` maps OpenSSL's libcrypto (3.5 MiB of resident memory),
    # and the agent, which imports this module, never makes an id.
    import secrets

    return "d-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


def new_uuid() -> str:
    return str(uuid.uuid4())


def now() -> float:
    """Wall-clock epoch seconds. Only edges (server handlers, runner) call this."""
    return time.time()
