"""Change sets: what executing a template against a stack would do to each resource.

Both sides are compared as *definitions*: each live resource's type and properties with
parameters, conditions and pseudo parameters resolved, and references to resources left
as their ``${Name}`` / ``${Name.Attr}`` text (their values are known only while the
stack operation runs). A resource whose definition is unchanged but that refers to a
replaced one is modified too, with the reference as the cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.stacks import intrinsics
from shipyard.stacks.intrinsics import Scope
from shipyard.stacks.template import Template
from shipyard.stacks.types import TYPES

Definition = dict[str, Any]


@dataclass(frozen=True)
class Change:
    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    replacement: str = ""  # Modify only: True, False or Conditional
    scope: tuple[str, ...] = ()
    # Modify: the properties that changed, or the resources whose replacement causes it.
    changed_properties: tuple[str, ...] = field(default_factory=tuple)
    caused_by: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "logicalId": self.logical_id,
            "type": self.resource_type,
            "replacement": self.replacement,
            "scope": list(self.scope),
            "properties": list(self.changed_properties),
            "causedBy": list(self.caused_by),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Change:
        return Change(
            data["action"],
            data["logicalId"],
            data["type"],
            data.get("replacement", ""),
            tuple(data.get("scope", ())),
            tuple(data.get("properties", ())),
            tuple(data.get("causedBy", ())),
        )


def definitions(template: Template, parameters: Mapping[str, Any]) -> dict[str, Definition]:
    """Each live resource's definition, in creation order (``parameters`` typed, pseudo
    parameters included)."""
    conditions = template.conditions(parameters)
    scope = Scope(parameters, conditions, mappings=template.mappings)
    live = template.live(conditions)
    return {
        logical_id: {
            "Type": live[logical_id]["Type"],
            "Properties": intrinsics.resolve(live[logical_id].get("Properties") or {}, scope),
            "UpdatePolicy": intrinsics.resolve(live[logical_id].get("UpdatePolicy") or {}, scope),
            "DeletionPolicy": live[logical_id].get("DeletionPolicy", "Delete"),
        }
        for logical_id in template.order(conditions)
    }


def diff(old: Mapping[str, Definition], new: Mapping[str, Definition]) -> list[Change]:
    """The changes from ``old`` to ``new`` (both in creation order): additions and
    modifications in ``new``'s order, then removals."""
    changes: list[Change] = []
    replaced: set[str] = set()
    for logical_id, definition in new.items():
        before = old.get(logical_id)
        if before is None:
            changes.append(Change("Add", logical_id, definition["Type"]))
            continue
        change = _modify(logical_id, before, definition, replaced)
        if change is not None:
            changes.append(change)
            if change.replacement == "True":
                replaced.add(logical_id)
    changes += [
        Change("Remove", logical_id, definition["Type"])
        for logical_id, definition in old.items()
        if logical_id not in new
    ]
    return changes


def _modify(
    logical_id: str, before: Definition, after: Definition, replaced: set[str]
) -> Change | None:
    kind = after["Type"]
    if before["Type"] != kind:
        return Change("Modify", logical_id, kind, "True", ("Properties",), ("Type",))
    old_props, new_props = before["Properties"], after["Properties"]
    changed = sorted(
        k for k in set(old_props) | set(new_props) if old_props.get(k) != new_props.get(k)
    )
    causes = sorted(
        name for name, _ in intrinsics.references_in_text(new_props) if name in replaced
    )
    policy_changed = before.get("UpdatePolicy") != after.get("UpdatePolicy")
    if not changed and not causes and not policy_changed:
        return None
    spec = TYPES[kind]
    if changed and spec.needs_replacement(old_props, new_props):
        replacement = "True"
    elif causes and (
        spec.replace_on & set(_referring(new_props, causes)) or "*" in spec.replace_on
    ):
        replacement = "Conditional"
    else:
        replacement = "False"
    scope = ("Properties",) if changed or causes else ("UpdatePolicy",)
    return Change("Modify", logical_id, kind, replacement, scope, tuple(changed), tuple(causes))


def _referring(properties: Mapping[str, Any], names: list[str]) -> list[str]:
    """The top-level properties whose value mentions one of ``names``."""
    return [
        key
        for key, value in properties.items()
        if any(name in names for name, _ in intrinsics.references_in_text(value))
    ]
