"""The 17 predefined deployment configurations, exactly as GetDeploymentConfig returns them.

They are data, not rows: they exist in every database, cannot be deleted, and their
names are reserved (``CodeDeployDefault.`` prefix). Spellings follow CodeDeploy:
Lambda uses ``...Every1Minute`` and ECS ``...Every1Minutes``.

OneAtATime reports ``MOST_CONCURRENCY``/1, as CodeDeploy's API does (the user guide's
"99%" is not what the API returns); HalfAtATime is 50 % of the fleet; AllAtOnce keeps
zero hosts healthy.
"""

from __future__ import annotations

from typing import Any

PREFIX = "CodeDeployDefault."

# When each platform's predefined configs appeared (launch dates of CodeDeploy,
# its Lambda support and its ECS support); fixed so responses are stable.
_SERVER_CREATED = 1415750400.0
_LAMBDA_CREATED = 1511827200.0
_ECS_CREATED = 1543276800.0


def _config_id(number: int) -> str:
    return f"00000000-0000-0000-0000-{number:012d}"


def _server(number: int, name: str, kind: str, value: int) -> dict[str, Any]:
    return {
        "deploymentConfigId": _config_id(number),
        "deploymentConfigName": PREFIX + name,
        "minimumHealthyHosts": {"type": kind, "value": value},
        "createTime": _SERVER_CREATED,
        "computePlatform": "Server",
    }


def _traffic(
    number: int, name: str, platform: str, routing: dict[str, Any], created: float
) -> dict[str, Any]:
    return {
        "deploymentConfigId": _config_id(number),
        "deploymentConfigName": PREFIX + name,
        "createTime": created,
        "computePlatform": platform,
        "trafficRoutingConfig": routing,
    }


def _canary(percent: int, minutes: int) -> dict[str, Any]:
    return {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": percent, "canaryInterval": minutes},
    }


def _linear(percent: int, minutes: int) -> dict[str, Any]:
    return {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": percent, "linearInterval": minutes},
    }


_ALL_AT_ONCE = {"type": "AllAtOnce"}

_CONFIGS: list[dict[str, Any]] = [
    _server(1, "OneAtATime", "MOST_CONCURRENCY", 1),
    _server(2, "HalfAtATime", "FLEET_PERCENT", 50),
    _server(3, "AllAtOnce", "HOST_COUNT", 0),
    _traffic(4, "LambdaCanary10Percent5Minutes", "Lambda", _canary(10, 5), _LAMBDA_CREATED),
    _traffic(5, "LambdaCanary10Percent10Minutes", "Lambda", _canary(10, 10), _LAMBDA_CREATED),
    _traffic(6, "LambdaCanary10Percent15Minutes", "Lambda", _canary(10, 15), _LAMBDA_CREATED),
    _traffic(7, "LambdaCanary10Percent30Minutes", "Lambda", _canary(10, 30), _LAMBDA_CREATED),
    _traffic(8, "LambdaLinear10PercentEvery1Minute", "Lambda", _linear(10, 1), _LAMBDA_CREATED),
    _traffic(9, "LambdaLinear10PercentEvery2Minutes", "Lambda", _linear(10, 2), _LAMBDA_CREATED),
    _traffic(10, "LambdaLinear10PercentEvery3Minutes", "Lambda", _linear(10, 3), _LAMBDA_CREATED),
    _traffic(11, "LambdaLinear10PercentEvery10Minutes", "Lambda", _linear(10, 10), _LAMBDA_CREATED),
    _traffic(12, "LambdaAllAtOnce", "Lambda", _ALL_AT_ONCE, _LAMBDA_CREATED),
    _traffic(13, "ECSLinear10PercentEvery1Minutes", "ECS", _linear(10, 1), _ECS_CREATED),
    _traffic(14, "ECSLinear10PercentEvery3Minutes", "ECS", _linear(10, 3), _ECS_CREATED),
    _traffic(15, "ECSCanary10Percent5Minutes", "ECS", _canary(10, 5), _ECS_CREATED),
    _traffic(16, "ECSCanary10Percent15Minutes", "ECS", _canary(10, 15), _ECS_CREATED),
    _traffic(17, "ECSAllAtOnce", "ECS", _ALL_AT_ONCE, _ECS_CREATED),
]

PREDEFINED_CONFIGS: dict[str, dict[str, Any]] = {c["deploymentConfigName"]: c for c in _CONFIGS}

# The config a deployment group gets when it names none, by compute platform.
DEFAULT_CONFIG_FOR_PLATFORM = {
    "Server": PREFIX + "OneAtATime",
    "Lambda": PREFIX + "LambdaAllAtOnce",
    "ECS": PREFIX + "ECSAllAtOnce",
}
