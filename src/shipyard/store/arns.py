"""ARNs of CodeDeploy resources, spelled as the CodeDeploy user guide spells them.

    arn:aws:codedeploy:<region>:<account>:application:<AppName>
    arn:aws:codedeploy:<region>:<account>:deploymentgroup:<AppName>/<GroupName>
    arn:aws:codedeploy:<region>:<account>:deploymentconfig:<ConfigName>
    arn:aws:codedeploy:<region>:<account>:instance/<InstanceName>

Resource tags are stored under these ARNs, so renames and deletes rebuild them here.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.model import ACCOUNT_ID

APPLICATION = "application"
DEPLOYMENT_GROUP = "deploymentgroup"
DEPLOYMENT_CONFIG = "deploymentconfig"
INSTANCE = "instance"


def _arn(region: str, resource: str) -> str:
    return f"arn:aws:codedeploy:{region}:{ACCOUNT_ID}:{resource}"


def application_arn(region: str, name: str) -> str:
    return _arn(region, f"{APPLICATION}:{name}")


def deployment_group_arn(region: str, application: str, group: str) -> str:
    return _arn(region, f"{DEPLOYMENT_GROUP}:{application}/{group}")


def deployment_config_arn(region: str, name: str) -> str:
    return _arn(region, f"{DEPLOYMENT_CONFIG}:{name}")


def instance_arn(region: str, name: str) -> str:
    return _arn(region, f"{INSTANCE}/{name}")


class ArnError(ValueError):
    """The string is not an ARN at all (InvalidArnException on the API)."""


@dataclass(frozen=True)
class ParsedArn:
    service: str
    region: str
    account: str
    resource_type: str  # "application", "deploymentgroup", ... or whatever else was given
    resource: str  # the part after the type: "App", "App/Group", "Config"


def parse_arn(arn: str) -> ParsedArn:
    """Split an ARN into its parts; raises ArnError when it is malformed."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2] or not parts[5]:
        raise ArnError(f"not a valid ARN: {arn!r}")
    _, _, service, region, account, resource = parts
    # Resource types use either "type:id" or "type/id".
    sep = min((i for i in (resource.find(":"), resource.find("/")) if i >= 0), default=-1)
    if sep <= 0 or sep == len(resource) - 1:
        raise ArnError(f"ARN has no resource type and name: {arn!r}")
    return ParsedArn(service, region, account, resource[:sep], resource[sep + 1 :])
