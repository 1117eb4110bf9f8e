"""Creation order from dependencies; deletion is the same order reversed."""

from __future__ import annotations

from collections.abc import Mapping, Set

from shipyard.stacks.errors import TemplateError


def creation_order(dependencies: Mapping[str, Set[str]]) -> list[str]:
    """Every resource after the ones it depends on; ties in template (mapping) order.
    A cycle is refused with CloudFormation's message, naming the resources in it."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(dependencies)
    while remaining:
        ready = [name for name in remaining if dependencies[name] <= placed]
        if not ready:
            names = ", ".join(_in_cycles(dependencies, remaining))
            raise TemplateError(f"Circular dependency between resources: [{names}]")
        for name in ready:
            order.append(name)
            placed.add(name)
        remaining = [name for name in remaining if name not in placed]
    return order


def _in_cycles(dependencies: Mapping[str, Set[str]], remaining: list[str]) -> list[str]:
    """The unplaced resources that lie on a cycle (not those merely waiting on one)."""
    on_cycle = []
    for start in remaining:
        seen: set[str] = set()
        frontier = [d for d in dependencies[start] if d in remaining]
        while frontier:
            node = frontier.pop()
            if node == start:
                on_cycle.append(start)
                break
            if node not in seen:
                seen.add(node)
                frontier.extend(d for d in dependencies[node] if d in remaining)
    return on_cycle
