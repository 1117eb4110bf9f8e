"""Weighted aliases: which version one invocation of an alias runs."""

from __future__ import annotations

import random
from typing import Any


def choose_version(alias: dict[str, Any], rng: random.Random) -> str:
    """The alias's version, or its additional version with that version's weight.

    One independent draw per invocation, as Lambda routes: over many invocations the
    additional version's share converges on its weight.
    """
    weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
    for extra, weight in weights.items():
        if rng.random() < float(weight):
            return str(extra)
    return str(alias["FunctionVersion"])
