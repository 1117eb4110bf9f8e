"""Traffic-shift schedules: when each share of traffic moves to the target (pure: no I/O,
no clock reads; time is an input).

A deployment config's ``trafficRoutingConfig`` says how a Lambda alias or an ECS
listener moves from the original to the target version (reference §4.1):

- ``TimeBasedCanary {canaryPercentage, canaryInterval}``: two increments, the canary
  percentage at once, the rest ``canaryInterval`` minutes later;
- ``TimeBasedLinear {linearPercentage, linearInterval}``: equal increments, one at the
  start of each interval, so ``ceil(100 / linearPercentage)`` increments and the last
  one at ``(ceil(100 / linearPercentage) - 1) * linearInterval`` minutes. When the
  percentage does not divide 100 the last increment is the remainder (30 % every
  minute: 30, 60, 90, 100);
- ``AllAtOnce``: one increment, 100 % at once.

So ``CodeDeployDefault.LambdaLinear10PercentEvery1Minute`` is 10 % at 0, 20 % at 1 min,
..., 100 % at 9 min, and ``...Canary10Percent5Minutes`` is 10 % at 0 and 100 % at 5 min.

Rules (the same the CreateDeploymentConfig handler enforces): canary and linear
percentages are whole numbers 1-99, intervals whole minutes 1-2880, and the first and
last shift at most 2880 minutes apart.

Minutes are scaled by ``minute_seconds`` (a server setting, 60 by default), so tests and
local rehearsals run a canary in seconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shipyard.errors import ShipyardError

MAX_SHIFT_MINUTES = 2880
FULL = 100


class InvalidTrafficRouting(ShipyardError):
    """A trafficRoutingConfig that no schedule can be built from; the message says why."""


class RoutingType(StrEnum):
    CANARY = "TimeBasedCanary"
    LINEAR = "TimeBasedLinear"
    ALL_AT_ONCE = "AllAtOnce"


_KINDS = {kind.value: kind for kind in RoutingType}
# The member holding each type's settings, and the prefix of its two fields.
_MEMBERS = {RoutingType.CANARY: "timeBasedCanary", RoutingType.LINEAR: "timeBasedLinear"}
_PREFIXES = {RoutingType.CANARY: "canary", RoutingType.LINEAR: "linear"}


@dataclass(frozen=True)
class TrafficRouting:
    """A validated trafficRoutingConfig. AllAtOnce has percentage 100 and interval 0."""

    kind: RoutingType
    percentage: int = FULL  # canary: the first increment; linear: every increment
    interval: int = 0  # minutes between increments

    def __post_init__(self) -> None:
        if self.kind is RoutingType.ALL_AT_ONCE:
            if (self.percentage, self.interval) != (FULL, 0):
                raise InvalidTrafficRouting("an AllAtOnce config has no percentage or interval")
            return
        prefix = _PREFIXES[self.kind]
        _whole(self.percentage, f"{prefix}Percentage", 1, FULL - 1)
        _whole(self.interval, f"{prefix}Interval", 1, MAX_SHIFT_MINUTES)
        span = (self.increments - 1) * self.interval
        if span > MAX_SHIFT_MINUTES:
            raise InvalidTrafficRouting(
                f"traffic shifting would take {span} minutes; "
                f"at most {MAX_SHIFT_MINUTES} are allowed"
            )

    @property
    def increments(self) -> int:
        if self.kind is RoutingType.LINEAR:
            return math.ceil(FULL / self.percentage)
        return 2 if self.kind is RoutingType.CANARY else 1


@dataclass(frozen=True)
class ShiftStep:
    offset: float  # seconds after the shift started when this step applies
    target_weight: int  # percent of traffic on the target (replacement), 0..100

    @property
    def original_weight(self) -> int:
        return FULL - self.target_weight


def parse_routing(doc: Mapping[str, Any]) -> TrafficRouting:
    """A ``trafficRoutingConfig`` as the API spells it, validated."""
    if not isinstance(doc, Mapping):
        raise InvalidTrafficRouting("trafficRoutingConfig must be an object")
    raw_kind = doc.get("type")
    kind = _KINDS.get(raw_kind) if isinstance(raw_kind, str) else None
    if kind is None:
        known = ", ".join(_KINDS)
        raise InvalidTrafficRouting(
            f"trafficRoutingConfig.type must be one of {known}; got {raw_kind!r}"
        )
    member = _MEMBERS.get(kind)
    extra = sorted(m for m in _MEMBERS.values() if m != member and doc.get(m) is not None)
    if extra:
        raise InvalidTrafficRouting(f"a {kind} config cannot have {', '.join(extra)}")
    if member is None:
        return TrafficRouting(kind)
    settings = doc.get(member)
    if not isinstance(settings, Mapping):
        raise InvalidTrafficRouting(f"a {kind} config needs {member} as an object")
    prefix = _PREFIXES[kind]
    percentage = _whole(settings.get(f"{prefix}Percentage"), f"{prefix}Percentage", 1, FULL - 1)
    interval = _whole(settings.get(f"{prefix}Interval"), f"{prefix}Interval", 1, MAX_SHIFT_MINUTES)
    return TrafficRouting(kind, percentage, interval)


def steps(routing: TrafficRouting, minute_seconds: float) -> tuple[ShiftStep, ...]:
    """Every step of the shift, in order; the first at offset 0, the last at 100 %."""
    if not minute_seconds > 0:
        raise ValueError(f"minute_seconds must be positive; got {minute_seconds!r}")
    interval = routing.interval * minute_seconds
    count = routing.increments
    return tuple(
        ShiftStep(
            offset=index * interval,
            target_weight=FULL if index == count - 1 else (index + 1) * routing.percentage,
        )
        for index in range(count)
    )


def due(schedule: Sequence[ShiftStep], started_at: float, now: float) -> ShiftStep | None:
    """The step in force at ``now``: the last one whose time has come (None before the
    shift started)."""
    passed = bisect.bisect_right([started_at + step.offset for step in schedule], now)
    return schedule[passed - 1] if passed else None


def next_due_at(schedule: Sequence[ShiftStep], started_at: float, now: float) -> float | None:
    """When the first step still to come is due (None once the last step is in force)."""
    for step in schedule:
        if started_at + step.offset > now:
            return started_at + step.offset
    return None


def _whole(value: object, what: str, minimum: int, maximum: int) -> int:
    if value is None:
        raise InvalidTrafficRouting(f"{what} is required")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTrafficRouting(f"{what} must be a whole number; got {value!r}")
    if not minimum <= value <= maximum:
        raise InvalidTrafficRouting(f"{what} must be from {minimum} to {maximum}; got {value}")
    return value
