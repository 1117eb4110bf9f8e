"""ARNs, names and the API's error names.

ARNs are AWS's (examples-1.json): ``…:loadbalancer/app/<name>/<id>``,
``…:targetgroup/<name>/<id>``, ``…:listener/app/<lb-name>/<lb-id>/<id>``,
``…:listener-rule/app/<lb-name>/<lb-id>/<listener-id>/<id>``; ids are 16 hex digits.
"""

from __future__ import annotations

import re
import secrets

from shipyard.errors import ApiError
from shipyard.model import ACCOUNT_ID

NAMESPACE = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
VERSION = "2015-12-01"
# Load balancer and target group names: 1-32 alphanumerics or hyphens, not at either end.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")


def new_id() -> str:
    return secrets.token_hex(8)


def _prefix(region: str) -> str:
    return f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT_ID}:"


def load_balancer_arn(region: str, name: str) -> str:
    return f"{_prefix(region)}loadbalancer/app/{name}/{new_id()}"


def target_group_arn(region: str, name: str) -> str:
    return f"{_prefix(region)}targetgroup/{name}/{new_id()}"


def listener_arn(lb_arn: str) -> str:
    return lb_arn.replace(":loadbalancer/", ":listener/", 1) + "/" + new_id()


def rule_arn(listener: str) -> str:
    return listener.replace(":listener/", ":listener-rule/", 1) + "/" + new_id()


def last_part(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name) or name.lower().startswith("internal-"):
        raise invalid(
            f"{kind} name {name[:64]!r} must be 1 to 32 letters, digits or hyphens, "
            "must not begin or end with a hyphen, and must not begin with 'internal-'"
        )
    return name


def invalid(message: str) -> ApiError:
    return ApiError("ValidationError", message)


def not_found(kind: str, what: str) -> ApiError:
    """``LoadBalancerNotFound``, ``TargetGroupNotFound``, ``ListenerNotFound``,
    ``RuleNotFound`` (the model's codes)."""
    label = re.sub(r"(?<!^)([A-Z])", r" \1", kind).lower()
    return ApiError(f"{kind}NotFound", f"One or more {label}s not found: {what[:300]}")


def configuration(message: str) -> ApiError:
    return ApiError("InvalidConfigurationRequest", message)
