"""What the API does for ECS deployment groups and deployments: the group's service,
target groups and listeners checked against the container backend at
CreateDeploymentGroup/UpdateDeploymentGroup, the appspec at CreateDeployment (nothing
is stored when they do not match), and the live task sets of an ECS target."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shipyard.engine.launch import PlatformTargets
from shipyard.engine.state import StoredDeployment
from shipyard.errors import ApiError, ShipyardError
from shipyard.platforms import platform_for_group
from shipyard.platforms.ecs_ import EcsPlatform, check_group_shape
from shipyard.platforms.ecs_listeners import EcsBackendError
from shipyard.platforms.ecs_steps import EcsSteps
from shipyard.platforms.ecs_target import EcsTarget, TaskSetInfo
from shipyard.server.context import Call, Services
from shipyard.server.operations import appspec_reader
from shipyard.stacks.bluegreen import stack_managed

log = logging.getLogger("shipyard.ecs")


def ecs_steps(call: Call) -> EcsSteps:
    steps = call.services.runner.steps.get("ECS")
    if not isinstance(steps, EcsSteps):
        raise ApiError("InvalidComputePlatformException", "This server runs no ECS deployments")
    return steps


async def check_group(call: Call, group: dict[str, Any]) -> None:
    """An ECS group as it would be stored: its shape, then the backend's resources."""
    check_group_shape(group)
    steps = ecs_steps(call)
    try:
        services = await asyncio.to_thread(steps.services)
        await asyncio.to_thread(
            services.check_group, EcsTarget.of_group(group), stack_managed(group)
        )
    except EcsBackendError as exc:
        raise ApiError("InvalidECSServiceException", f"The container backend: {exc}") from None


async def targets(
    call: Call, platform: EcsPlatform, revision: dict[str, Any], group: dict[str, Any]
) -> PlatformTargets:
    """The deployment's target (the service), once the backend matches the appspec."""

    spec = await asyncio.to_thread(platform.appspec, revision, appspec_reader.reader(call))
    target = EcsTarget.of_group(group)
    steps = ecs_steps(call)
    try:
        services = await asyncio.to_thread(steps.services)
        await asyncio.to_thread(services.check_deployment, target, spec, stack_managed(group))
    except EcsBackendError as exc:
        raise ApiError("InvalidECSServiceException", f"The container backend: {exc}") from None
    return platform.targets(spec, target)


def rollback_targets(
    services: Services, group: dict[str, Any], revision: dict[str, Any]
) -> PlatformTargets | None:
    """The target of a manual rollback to ``revision`` in an ECS group (None for other
    platforms): the service, with the earlier appspec's task definition."""
    platform = platform_for_group(group)
    if not isinstance(platform, EcsPlatform):
        return None
    spec = platform.appspec(revision, appspec_reader.store_reader(services))
    return platform.targets(spec, EcsTarget.of_group(group))


async def task_sets(call: Call, stored: StoredDeployment) -> list[TaskSetInfo] | None:
    """The service's task sets now; None when the backend cannot say (the target is
    then shown without them rather than not at all)."""
    try:
        return await asyncio.to_thread(ecs_steps(call).task_sets, stored)
    except ShipyardError as exc:
        log.warning("task sets of %s unknown: %s", stored.state.deployment_id, exc)
        return None
