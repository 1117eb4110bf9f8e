"""Shared by the Lambda deployment tests: appspecs, groups, and watching a shift."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

from tests.server.crud_support import ROLE_ARN

LAMBDA_STYLE = {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"}


def appspec(
    function: str, alias: str, current: str, target: str, hooks: dict[str, str] | None = None
) -> str:
    lines = [
        "version: 0.0",
        "Resources:",
        "  - fn:",
        "      Type: AWS::Lambda::Function",
        "      Properties:",
        f"        Name: {function}",
        f"        Alias: {alias}",
        f'        CurrentVersion: "{current}"',
        f'        TargetVersion: "{target}"',
    ]
    if hooks:
        lines.append("Hooks:")
        lines += [f"  - {event}: {name}" for event, name in hooks.items()]
    return "\n".join(lines) + "\n"


def revision(content: str, *, sha256: str | None = None) -> dict[str, Any]:
    digest = sha256 if sha256 is not None else hashlib.sha256(content.encode()).hexdigest()
    return {
        "revisionType": "AppSpecContent",
        "appSpecContent": {"content": content, "sha256": digest},
    }


def create_group(cd: Any, app: str, group: str, config: str, **extra: Any) -> None:
    cd.create_deployment_group(
        applicationName=app,
        deploymentGroupName=group,
        serviceRoleArn=ROLE_ARN,
        deploymentConfigName=config,
        deploymentStyle=LAMBDA_STYLE,
        **extra,
    )


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def weight_on(lam: Any, function: str, alias: str, version: str) -> int:
    """The percent of the alias's traffic on ``version``, as GetAlias says."""
    found = lam.get_alias(FunctionName=function, Name=alias)
    if found["FunctionVersion"] == version:
        return 100
    extra = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return round(float(extra.get(version, 0.0)) * 100)


def lambda_info(cd: Any, deployment_id: str, target_id: str) -> dict[str, Any]:
    target = cd.get_deployment_target(deploymentId=deployment_id, targetId=target_id)
    return dict(target["deploymentTarget"]["lambdaTarget"])
