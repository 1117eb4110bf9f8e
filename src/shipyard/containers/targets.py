"""The seam between the embedded ECS and ELBv2: target groups as ECS sees them.

ECS never reaches into the load balancer's tables or HAProxy; it calls these four
methods, which the ELBv2 side implements over its store and HAProxy processes.
Targets are of type `ip`: an address on this machine (or a capacity host) and a host
port, as an awsvpc task's address would be on AWS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, order=True)
class Target:
    address: str
    port: int


class TargetState(StrEnum):
    """ELBv2's TargetHealth.State values."""

    INITIAL = "initial"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNUSED = "unused"
    DRAINING = "draining"
    UNAVAILABLE = "unavailable"


class TargetGroups(Protocol):
    def exists(self, target_group_arn: str) -> bool:
        """Whether the ARN names a target group (CreateService/CreateTaskSet check it)."""
        ...

    def register(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        """Add targets; they start `initial` and turn `healthy` by the group's checks."""
        ...

    def deregister(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        """Start draining: no new requests at once, removed after the group's
        deregistration delay (or sooner once idle). Returns without waiting."""
        ...

    def health(self, target_group_arn: str) -> Mapping[Target, TargetState]:
        """Every registered or draining target's state; a target that finished
        draining is absent (`unused`)."""
        ...
