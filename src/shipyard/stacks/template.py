"""A template: parsed, transformed, checked the way CloudFormation checks it, and the
pure questions asked of it (conditions, live resources, dependencies, outputs)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.stacks import bluegreen, graph, intrinsics, serverless
from shipyard.stacks.errors import TemplateError, format_error
from shipyard.stacks.intrinsics import Scope
from shipyard.stacks.parameters import PSEUDO
from shipyard.stacks.text import parse
from shipyard.stacks.types import TYPES, unsupported

SECTIONS = frozenset(
    {
        "AWSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Parameters",
        "Mappings",
        "Conditions",
        "Transform",
        "Resources",
        "Outputs",
        "Rules",
        "Hooks",
    }
)
RESOURCE_KEYS = frozenset(
    {
        "Type",
        "Properties",
        "DependsOn",
        "Condition",
        "Metadata",
        "DeletionPolicy",
        "UpdateReplacePolicy",
        "UpdatePolicy",
        "CreationPolicy",
    }
)


@dataclass(frozen=True)
class Template:
    """A template after its transforms, checked."""

    document: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.document.get("Description", ""))

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.document.get("Parameters") or {})

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.document["Resources"])

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return dict(self.document.get("Outputs") or {})

    @property
    def mappings(self) -> dict[str, Any]:
        return dict(self.document.get("Mappings") or {})

    @property
    def blue_green_hook(self) -> bluegreen.Hook | None:
        """The CodeDeploy blue/green hook (checked when the template was loaded)."""
        return bluegreen.find(self.document)

    def conditions(self, parameters: Mapping[str, Any]) -> dict[str, bool]:
        """Every condition's value for these parameter values (pseudo ones included)."""
        definitions = dict(self.document.get("Conditions") or {})
        results: dict[str, bool] = {}
        visiting: set[str] = set()

        class _Lazy(dict[str, bool]):
            def __contains__(self, name: object) -> bool:
                return name in definitions

            def __getitem__(self, name: str) -> bool:
                return evaluate(name)

        def evaluate(name: str) -> bool:
            if name in results:
                return results[name]
            if name in visiting:
                raise TemplateError(f"Template error: circular condition dependency on {name}")
            visiting.add(name)
            value = intrinsics.resolve(
                definitions[name], Scope(parameters, _Lazy(), mappings=self.mappings)
            )
            if not isinstance(value, bool):
                raise TemplateError(f"Template error: condition {name} must be true or false")
            results[name] = value
            return value

        for name in definitions:
            evaluate(name)
        return results

    def live(self, conditions: Mapping[str, bool]) -> dict[str, dict[str, Any]]:
        """The resources whose Condition holds, in template order."""
        return {
            logical_id: definition
            for logical_id, definition in self.resources.items()
            if "Condition" not in definition or conditions[definition["Condition"]]
        }

    def dependencies(self, live: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
        """For each live resource, the live resources it refers to or DependsOn."""
        result: dict[str, set[str]] = {}
        for logical_id, definition in live.items():
            named = {name for name, _ in intrinsics.references(definition.get("Properties"))}
            named |= set(depends_on(definition))
            result[logical_id] = {name for name in named if name in live and name != logical_id}
        return result

    def order(self, conditions: Mapping[str, bool]) -> list[str]:
        live = self.live(conditions)
        return graph.creation_order(self.dependencies(live))


def depends_on(definition: Mapping[str, Any]) -> list[str]:
    value = definition.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def load(body: str, parameters: Mapping[str, Any] | None = None) -> Template:
    """Parse, expand transforms, and check: ValidateTemplate and CreateStack's refusals.
    ``parameters``: the Ref values in force (parameter defaults when None)."""
    parsed = parse(body)
    document = serverless.expand(parsed, _resolver(parsed, parameters))
    check(document)
    return Template(document)


def _resolver(document: dict[str, Any], parameters: Mapping[str, Any] | None) -> Any:
    """What the serverless transform resolves its hash input with: parameters (given or
    defaults) and conditions; anything else (resources) is left as written."""
    declared = document.get("Parameters") if isinstance(document.get("Parameters"), dict) else {}
    values: dict[str, Any] = (
        dict(parameters)
        if parameters is not None
        else {key: d.get("Default") for key, d in (declared or {}).items() if isinstance(d, dict)}
    )
    try:
        conditions = Template(document).conditions(values)
    except TemplateError:
        conditions = {}

    def resolve(value: Any) -> Any:
        try:
            return intrinsics.resolve(value, Scope(values, conditions))
        except TemplateError:
            return value

    return resolve


def check(document: Mapping[str, Any]) -> None:
    extra = sorted(set(document) - SECTIONS)
    if extra:
        raise format_error(f"Invalid template property or properties [{', '.join(extra)}]")
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise format_error("At least one Resources member must be defined.")
    for section in ("Parameters", "Conditions", "Outputs", "Mappings"):
        if section in document and not isinstance(document[section], dict):
            raise format_error(f"{section} must be an object")
    for logical_id, definition in resources.items():
        _check_resource(logical_id, definition)
    missing_types = unsupported([d["Type"] for d in resources.values()])
    if missing_types:
        raise format_error(f"Unrecognized resource types: [{', '.join(missing_types)}]")
    conditions = document.get("Conditions") or {}
    parameters = set(document.get("Parameters") or {}) | set(PSEUDO)
    for definition in conditions.values():
        bad = [ref for ref, _ in intrinsics.references(definition) if ref not in parameters]
        if bad:
            raise format_error(
                f"Unresolved dependencies [{', '.join(bad)}]. "
                "Cannot reference resources in the Conditions block of the template"
            )
    _check_references(resources, parameters, conditions, "Resources", resources)
    _check_references(resources, parameters, conditions, "Outputs", document.get("Outputs") or {})
    graph.creation_order(
        Template(dict(document)).dependencies(resources)  # cycles over every resource
    )
    bluegreen.find(document)


def _check_resource(logical_id: str, definition: Any) -> None:
    if not logical_id.isalnum():
        raise format_error(f"Resource name {logical_id} is non alphanumeric.")
    if not isinstance(definition, dict) or not isinstance(definition.get("Type"), str):
        raise format_error(
            f"[/Resources/{logical_id}] Every Resources object must contain a Type member."
        )
    extra = sorted(set(definition) - RESOURCE_KEYS)
    if extra:
        raise format_error(
            f"Unrecognized resource attribute(s) [{', '.join(extra)}] in resource {logical_id}"
        )
    if "Properties" in definition and not isinstance(definition["Properties"], dict):
        raise format_error(f"[/Resources/{logical_id}/Properties] must be an object")


def _check_references(
    resources: Mapping[str, Mapping[str, Any]],
    parameters: set[str],
    conditions: Mapping[str, Any],
    block: str,
    entries: Mapping[str, Any],
) -> None:
    unresolved: list[str] = []
    for definition in entries.values():
        if not isinstance(definition, dict):
            raise format_error(f"Every {block} member must be an object")
        if block == "Resources":
            unresolved += [n for n in depends_on(definition) if n not in resources]
        condition = definition.get("Condition")
        if condition is not None and condition not in conditions:
            raise format_error(
                f"Unresolved condition dependencies [{condition}] in the {block} block "
                "of the template"
            )
        body = definition.get("Properties") if block == "Resources" else definition
        for name, attribute in intrinsics.references(body):
            if attribute is None:
                if name not in resources and name not in parameters:
                    unresolved.append(name)
                continue
            if name not in resources:
                raise TemplateError(
                    f"Template error: instance of Fn::GetAtt references undefined resource {name}"
                )
            kind = TYPES[resources[name]["Type"]]
            if attribute not in kind.attributes:
                raise TemplateError(
                    f"Template error: resource {name} does not support attribute type "
                    f"{attribute} in Fn::GetAtt"
                )
    if unresolved:
        names = ", ".join(dict.fromkeys(unresolved))
        raise format_error(
            f"Unresolved resource dependencies [{names}] in the {block} block of the template"
        )
