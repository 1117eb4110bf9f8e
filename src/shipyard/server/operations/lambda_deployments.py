"""What the API does for Lambda deployments: the appspec checked against the function
backend at CreateDeployment (nothing is stored when it does not match). A hook
function's report is ``hook_status``."""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.engine.launch import PlatformTargets
from shipyard.errors import ApiError
from shipyard.platforms.lambda_ import LambdaPlatform
from shipyard.platforms.lambda_backend import LambdaBackendError
from shipyard.platforms.lambda_steps import LambdaSteps
from shipyard.server.context import Call
from shipyard.server.operations import appspec_reader


def lambda_steps(call: Call) -> LambdaSteps:
    steps = call.services.runner.steps.get("Lambda")
    if not isinstance(steps, LambdaSteps):
        raise ApiError("InvalidComputePlatformException", "This server runs no Lambda deployments")
    return steps


async def targets(
    call: Call, platform: LambdaPlatform, revision: dict[str, Any]
) -> PlatformTargets:
    """The deployment's target (the alias), once the backend matches the appspec."""

    spec = await asyncio.to_thread(platform.appspec, revision, appspec_reader.reader(call))
    steps = lambda_steps(call)
    try:
        aliases = await asyncio.to_thread(steps.aliases)
        await asyncio.to_thread(aliases.check, spec)
    except LambdaBackendError as exc:
        raise ApiError("InvalidRevisionException", f"The function backend: {exc}") from None
    return platform.targets(spec)
