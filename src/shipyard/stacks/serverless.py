"""``Transform: AWS::Serverless-2016-10-31`` for ``AWS::Serverless::Function``: the
Lambda function, and with AutoPublishAlias a Version named after a hash of its code
and an Alias on it; with a DeploymentPreference, a CodeDeploy application and group
and the alias's ``CodeDeployLambdaAliasUpdate`` update policy, so a code change is
shifted by a Lambda deployment (as SAM's translator emits them).

Shipyard has no IAM: a function without ``Role`` and the CodeDeploy group get role
ARNs written out rather than generated ``AWS::IAM::Role`` resources.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.stacks.errors import TemplateError

TRANSFORM = "AWS::Serverless-2016-10-31"
FUNCTION = "AWS::Serverless::Function"
APPLICATION = "ServerlessDeploymentApplication"
PREDEFINED = frozenset(
    {
        "Canary10Percent5Minutes",
        "Canary10Percent10Minutes",
        "Canary10Percent15Minutes",
        "Canary10Percent30Minutes",
        "Linear10PercentEvery1Minute",
        "Linear10PercentEvery2Minutes",
        "Linear10PercentEvery3Minutes",
        "Linear10PercentEvery10Minutes",
        "AllAtOnce",
    }
)
_ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[a-zA-Z0-9\-_]+")
# Copied onto the function as they are.
_PASSED = (
    "FunctionName",
    "Handler",
    "Runtime",
    "Environment",
    "MemorySize",
    "Timeout",
    "Description",
    "Role",
    "Tags",
)
# What a new version is published for (SAM's default hash input besides Code).
_VERSIONED = ("Environment", "MemorySize")
_ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]


def transforms(document: Mapping[str, Any]) -> list[str]:
    value = document.get("Transform", [])
    return [value] if isinstance(value, str) else list(value)


def _unchanged(value: Any) -> Any:
    return value


def expand(document: dict[str, Any], resolve: Callable[[Any], Any] = _unchanged) -> dict[str, Any]:
    """The document with its serverless resources expanded (unchanged without the
    transform; a serverless resource without it is refused by the type check).

    ``resolve`` evaluates what a version's hash covers with the parameter values in
    force (as SAM does), so a parameter that changes the code or environment publishes
    a new version."""
    if TRANSFORM not in transforms(document):
        return document
    result = copy.deepcopy(document)
    result["Transform"] = [t for t in transforms(document) if t != TRANSFORM]
    if not result["Transform"]:
        del result["Transform"]
    globals_ = (result.pop("Globals", None) or {}).get("Function") or {}
    resources: dict[str, Any] = {}
    for logical_id, definition in (result.get("Resources") or {}).items():
        if isinstance(definition, dict) and definition.get("Type") == FUNCTION:
            properties = {**globals_, **(definition.get("Properties") or {})}
            resources.update(_function(logical_id, definition, properties, resolve))
        else:
            resources[logical_id] = definition
    result["Resources"] = resources
    return result


def _function(
    logical_id: str,
    definition: Mapping[str, Any],
    properties: Mapping[str, Any],
    resolve: Callable[[Any], Any],
) -> dict[str, Any]:
    if properties.get("Events"):
        raise TemplateError(
            f"Resource with id [{logical_id}] is invalid. Events are not supported by Shipyard"
        )
    function: dict[str, Any] = {key: properties[key] for key in _PASSED if key in properties}
    function["Code"] = _code(logical_id, properties)
    function.setdefault(
        "Role", {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/" + logical_id + "Role"}
    )
    out: dict[str, Any] = {logical_id: _resource(definition, "AWS::Lambda::Function", function)}
    alias_name = properties.get("AutoPublishAlias")
    preference = properties.get("DeploymentPreference")
    enabled = (
        isinstance(preference, dict) and str(preference.get("Enabled", True)).lower() != "false"
    )
    if alias_name is None:
        if enabled:
            raise TemplateError(
                f"Resource with id [{logical_id}] is invalid. "
                "'DeploymentPreference' requires AutoPublishAlias property to be specified."
            )
        return out
    if not isinstance(alias_name, str) or not _ALIAS_NAME.fullmatch(alias_name):
        raise TemplateError(
            f"Resource with id [{logical_id}] is invalid. AutoPublishAlias must match "
            "(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        )
    version_id = logical_id + "Version" + _code_hash(resolve(function))
    out[version_id] = {
        "Type": "AWS::Lambda::Version",
        "DeletionPolicy": properties.get("VersionDeletionPolicy", "Retain"),
        "Properties": {"FunctionName": {"Ref": logical_id}},
    }
    alias_id = logical_id + "Alias" + alias_name.replace("-", "D").replace("_", "U")
    alias: dict[str, Any] = {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "Name": alias_name,
            "FunctionName": {"Ref": logical_id},
            "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        },
    }
    if enabled:
        assert isinstance(preference, dict)
        group_id = logical_id + "DeploymentGroup"
        out[APPLICATION] = _application()
        out[group_id] = _group(logical_id, preference)
        hooks = preference.get("Hooks") or {}
        policy: dict[str, Any] = {
            "ApplicationName": {"Ref": APPLICATION},
            "DeploymentGroupName": {"Ref": group_id},
        }
        if "PreTraffic" in hooks:
            policy["BeforeAllowTrafficHook"] = hooks["PreTraffic"]
        if "PostTraffic" in hooks:
            policy["AfterAllowTrafficHook"] = hooks["PostTraffic"]
        alias["UpdatePolicy"] = {"CodeDeployLambdaAliasUpdate": policy}
    out[alias_id] = alias
    return out


def _resource(
    definition: Mapping[str, Any], kind: str, properties: dict[str, Any]
) -> dict[str, Any]:
    kept = {k: v for k, v in definition.items() if k in ("DependsOn", "Condition", "Metadata")}
    return {"Type": kind, **kept, "Properties": properties}


def _code(logical_id: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    if "InlineCode" in properties:
        raise TemplateError(
            f"Resource with id [{logical_id}] is invalid. InlineCode is not supported by Shipyard"
        )
    uri = properties.get("CodeUri")
    if isinstance(uri, dict) and "Bucket" in uri and "Key" in uri:
        code = {"S3Bucket": uri["Bucket"], "S3Key": uri["Key"]}
        if "Version" in uri:
            code["S3ObjectVersion"] = uri["Version"]
        return code
    if isinstance(uri, str) and uri.startswith("s3://") and "/" in uri[5:]:
        bucket, key = uri[5:].split("/", 1)
        return {"S3Bucket": bucket, "S3Key": key}
    raise TemplateError(
        f"Resource with id [{logical_id}] is invalid. 'CodeUri' is not a valid S3 Uri of the form "
        "'s3://bucket/key' with optional versionId query parameter. "
        "(shipyard stack deploy packages a local path into the built-in store)"
    )


def _code_hash(function: Mapping[str, Any]) -> str:
    hashed = {"Code": function["Code"], **{k: function[k] for k in _VERSIONED if k in function}}
    text = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


def _application() -> dict[str, Any]:
    return {"Type": "AWS::CodeDeploy::Application", "Properties": {"ComputePlatform": "Lambda"}}


def _group(logical_id: str, preference: Mapping[str, Any]) -> dict[str, Any]:
    kind = preference.get("Type")
    if not isinstance(kind, str) or not kind:
        raise TemplateError(
            f"Resource with id [{logical_id}] is invalid. 'DeploymentPreference' is missing "
            "required Property 'Type'"
        )
    config: Any = (
        {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": kind}]}
        if kind in PREDEFINED
        else kind
    )
    properties: dict[str, Any] = {
        "ApplicationName": {"Ref": APPLICATION},
        "DeploymentConfigName": config,
        "DeploymentStyle": {
            "DeploymentType": "BLUE_GREEN",
            "DeploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "AutoRollbackConfiguration": {"Enabled": True, "Events": _ROLLBACK_EVENTS},
        "ServiceRoleArn": preference.get(
            "Role",
            {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:role/CodeDeployServiceRole"},
        ),
    }
    alarms = preference.get("Alarms")
    if alarms:
        names = alarms if isinstance(alarms, list) else [alarms]
        properties["AlarmConfiguration"] = {
            "Enabled": True,
            "Alarms": [{"Name": name} for name in names],
        }
    if preference.get("TriggerConfigurations"):
        properties["TriggerConfigurations"] = preference["TriggerConfigurations"]
    return {"Type": "AWS::CodeDeploy::DeploymentGroup", "Properties": properties}
