"""Strategies: how a deployment advances once a host's status changed or time passed.

Each strategy module offers the same three functions, and the machine picks the
module by ``DeploymentState.strategy``:

    counted(state) -> int            hosts the health rule counts when the deployment starts
    advance(state, now, out) -> None decide the next move of an InProgress deployment
    hold(target, next_event, state) -> bool   whether a host waits (Ready) before next_event
"""

from __future__ import annotations

from typing import Protocol

from shipyard.engine.messages import Outcome
from shipyard.engine.state import DeploymentState, Strategy, TargetState
from shipyard.engine.strategies import blue_green, in_place, traffic_shift


class StrategyRules(Protocol):
    def counted(self, state: DeploymentState) -> int: ...

    def advance(self, state: DeploymentState, now: float, out: Outcome) -> None: ...

    def hold(self, target: TargetState, next_event: str, state: DeploymentState) -> bool: ...


class _Module:
    """A strategy module seen through the protocol (modules are not classes)."""

    def __init__(self, module: StrategyRules) -> None:
        self.counted = module.counted
        self.advance = module.advance
        self.hold = module.hold


STRATEGIES: dict[Strategy, StrategyRules] = {
    Strategy.IN_PLACE: _Module(in_place),
    Strategy.BLUE_GREEN: _Module(blue_green),
    Strategy.TRAFFIC_SHIFT: _Module(traffic_shift),
}


def rules_for(state: DeploymentState) -> StrategyRules:
    return STRATEGIES[state.strategy]
