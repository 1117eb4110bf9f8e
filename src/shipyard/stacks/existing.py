"""A stack's resources as they exist: what Ref and Fn::GetAtt give, the order to delete
them in, and the Outputs they resolve."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.stacks import intrinsics
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.graph import creation_order
from shipyard.stacks.intrinsics import Scope
from shipyard.stacks.prepared import Prepared
from shipyard.stacks.template import load

Row = dict[str, Any]


class Resources:
    """Refs and attributes of the resources as they exist now (intrinsics.Lookup)."""

    def __init__(self, rows: Mapping[str, Row]) -> None:
        self.rows = rows

    def ref(self, logical_id: str) -> Any:
        row = self.rows.get(logical_id)
        if row is None or not row.get("physical_id"):
            raise TemplateError(f"Resource {logical_id} does not exist yet")
        return row["physical_id"]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        attributes = (self.rows.get(logical_id) or {}).get("attributes") or {}
        if attribute not in attributes:
            raise TemplateError(f"Attribute {attribute} of {logical_id} is not available")
        return attributes[attribute]


def deletion_order(stack: Row, rows: Mapping[str, Row]) -> list[str]:
    """Deletion order: the stack's template's creation order reversed (of the template
    before an update, which still names removed resources), unknown rows first."""
    bodies = [(stack.get("previous") or {}).get("template_body"), stack["template_body"]]
    for body in bodies:
        if not body:
            continue
        try:
            template = load(body)
            known = {
                name: {d for d in deps if d in rows}
                for name, deps in template.dependencies(
                    {n: template.resources[n] for n in template.resources if n in rows}
                ).items()
            }
            order = creation_order(known)
        except TemplateError:
            continue
        return [name for name in rows if name not in order] + list(reversed(order))
    return list(reversed(list(rows)))


def outputs(prepared: Prepared, rows: Mapping[str, Row]) -> list[Row]:
    scope = Scope(
        prepared.parameters, prepared.conditions, Resources(rows), prepared.template.mappings
    )
    found = []
    for key, output in prepared.template.outputs.items():
        if "Condition" in output and not prepared.conditions.get(output["Condition"]):
            continue
        value = intrinsics.resolve(output.get("Value"), scope)
        entry: Row = {
            "OutputKey": key,
            "OutputValue": value
            if isinstance(value, str)
            else ",".join(map(str, value))
            if isinstance(value, list)
            else str(value),
        }
        if output.get("Description"):
            entry["Description"] = output["Description"]
        found.append(entry)
    return found
