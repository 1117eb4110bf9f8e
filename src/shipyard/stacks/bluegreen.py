"""``Transform: AWS::CodeDeployBlueGreen`` with its ``AWS::CodeDeploy::BlueGreen`` hook
(reference aws-services.md §6.4): recognising the hook, checking it the way
CloudFormation does, and deciding whether an update runs as a blue/green deployment.

Pure: no I/O. The runner asks ``decide`` with the changes an update makes; the
deployment itself is carried out by ``providers/bluegreen.py``.

A stack create builds the blue resources directly. An update that replaces the blue
task definition or task set (a new image, environment, ...) is a green deployment: a
CodeDeploy ECS deployment shifts traffic from the blue task set to a green one on the
hook's schedule, with its hook functions. Such an update may change nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.stacks.errors import TemplateError
from shipyard.stacks.types import TYPES

TRANSFORM = "AWS::CodeDeployBlueGreen"
HOOK_TYPE = "AWS::CodeDeploy::BlueGreen"
SERVICE = "AWS::ECS::Service"
TASK_DEFINITION = "AWS::ECS::TaskDefinition"
TASK_SET = "AWS::ECS::TaskSet"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
EVENTS = (
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
ROUTING_TYPES = ("AllAtOnce", "TimeBasedCanary", "TimeBasedLinear")
# CloudFormation's default when TrafficRoutingConfig is left out (and CDK's documented
# defaults for a canary or linear block's members).
DEFAULT_STEP, DEFAULT_BAKE = 15, 5
MIN_STEP = 14
HOOK_KEYS = frozenset(
    {
        "ServiceRole",
        "Applications",
        "TrafficRoutingConfig",
        "AdditionalOptions",
        "LifecycleEventHooks",
    }
)
# The policy key the runner gives the green task set's step (read by the provider).
POLICY = "Shipyard::CodeDeployBlueGreen"

_SCHEMA = (
    f"Transform {TRANSFORM} failed with: Failed to transform template. Failed to parse "
    'the "Hooks" section for the provided template. Please ensure the '
    f"{HOOK_TYPE} Hook matches the expected schema"
)


def schema_error(detail: str) -> TemplateError:
    return TemplateError(f"{_SCHEMA}: {detail}")


def resource_error(logical_id: str, detail: str) -> TemplateError:
    return TemplateError(
        f"Transform {TRANSFORM} failed with: Failed to transform template. Failed to parse "
        f'the template resource "Resources->{logical_id}": {detail}'
    )


def hook_error(hook: str, detail: str) -> TemplateError:
    return TemplateError(f"'{hook}' of type {HOOK_TYPE} failed with message: {detail}")


@dataclass(frozen=True)
class Hook:
    """A checked blue/green hook, as the deployment needs it."""

    logical_id: str
    service_role: str
    service: str
    task_definitions: tuple[str, str]  # blue, green logical ids
    task_sets: tuple[str, str]
    prod_listener: str
    test_listener: str | None
    target_groups: tuple[str, str]
    # CodeDeploy's trafficRoutingConfig shape (a deployment config's).
    routing: dict[str, Any]
    termination_wait_minutes: int
    # event -> function (a name, or an intrinsic the runner resolves)
    functions: dict[str, Any] = field(default_factory=dict)

    @property
    def blue_task_definition(self) -> str:
        return self.task_definitions[0]

    @property
    def blue_task_set(self) -> str:
        return self.task_sets[0]

    def to_doc(self) -> dict[str, Any]:
        return {
            "hook": self.logical_id,
            "serviceRole": self.service_role,
            "routing": self.routing,
            "terminationWaitMinutes": self.termination_wait_minutes,
            "functions": self.functions,
        }


def transforms(document: Mapping[str, Any]) -> list[str]:
    value = document.get("Transform", [])
    return [value] if isinstance(value, str) else list(value or [])


def find(document: Mapping[str, Any]) -> Hook | None:
    """The template's blue/green hook, checked against its resources; None when the
    template has neither the transform nor such a hook. Raises ``TemplateError`` with
    CloudFormation's message (the detail appended) for a malformed one."""
    hooks = document.get("Hooks")
    has_transform = TRANSFORM in transforms(document)
    if hooks is None:
        if has_transform:
            raise schema_error(f"the {TRANSFORM} transform needs a Hooks section")
        return None
    if not isinstance(hooks, dict) or not hooks:
        raise schema_error("Hooks must be an object with one hook")
    found = []
    for logical_id, definition in hooks.items():
        if not isinstance(definition, dict) or definition.get("Type") != HOOK_TYPE:
            kind = definition.get("Type") if isinstance(definition, dict) else None
            raise schema_error(f"hook {logical_id} has Type {kind!r}; expected {HOOK_TYPE}")
        found.append((logical_id, definition))
    if not has_transform:
        raise TemplateError(
            f"Template format error: the {HOOK_TYPE} hook needs Transform: {TRANSFORM}"
        )
    if len(found) != 1:
        raise schema_error(f"only one {HOOK_TYPE} hook is supported; found {len(found)}")
    if document.get("Outputs"):
        raise TemplateError(
            f"Transform {TRANSFORM} failed with: Outputs are not supported in a template "
            f"with the {HOOK_TYPE} hook"
        )
    logical_id, definition = found[0]
    hook = _parse(logical_id, definition)
    _check_resources(hook, document.get("Resources") or {})
    return hook


def _parse(logical_id: str, definition: Mapping[str, Any]) -> Hook:
    if not logical_id.isalnum():
        raise schema_error(f"hook name {logical_id} is non alphanumeric")
    props = definition.get("Properties")
    if not isinstance(props, dict):
        raise schema_error(f"hook {logical_id} needs Properties")
    extra = sorted(set(props) - HOOK_KEYS)
    if extra:
        raise schema_error(f"unknown hook properties [{', '.join(extra)}]")
    role = props.get("ServiceRole")
    if not isinstance(role, str) or not role:
        raise schema_error("ServiceRole is required (an IAM role name)")
    applications = props.get("Applications")
    if not isinstance(applications, list) or len(applications) != 1:
        raise schema_error("Applications must list exactly one ECS service")
    app = _object(applications[0], "Applications[0]")
    target = _object(app.get("Target"), "Applications[0].Target")
    if target.get("Type") != SERVICE:
        raise schema_error(f"Applications[0].Target.Type must be {SERVICE}")
    attributes = _object(app.get("ECSAttributes"), "Applications[0].ECSAttributes")
    routing = _object(attributes.get("TrafficRouting"), "ECSAttributes.TrafficRouting")
    prod = _route(routing.get("ProdTrafficRoute"), "ProdTrafficRoute")
    test = (
        _route(routing["TestTrafficRoute"], "TestTrafficRoute")
        if routing.get("TestTrafficRoute") is not None
        else None
    )
    return Hook(
        logical_id=logical_id,
        service_role=role,
        service=_name(target.get("LogicalID"), "Applications[0].Target.LogicalID"),
        task_definitions=_pair(attributes.get("TaskDefinitions"), "TaskDefinitions"),
        task_sets=_pair(attributes.get("TaskSets"), "TaskSets"),
        prod_listener=prod,
        test_listener=test,
        target_groups=_pair(routing.get("TargetGroups"), "TargetGroups"),
        routing=traffic_routing(props.get("TrafficRoutingConfig")),
        termination_wait_minutes=_termination_wait(props.get("AdditionalOptions")),
        functions=_functions(props.get("LifecycleEventHooks")),
    )


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise schema_error(f"{where} is required (an object)")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise schema_error(f"{where} is required (a logical id)")
    return value


def _pair(value: Any, where: str) -> tuple[str, str]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise schema_error(f"{where} must list two logical ids: blue, then green")
    if value[0] == value[1]:
        raise schema_error(f"{where}: the blue and green logical ids must differ")
    return value[0], value[1]


def _route(value: Any, where: str) -> str:
    route = _object(value, f"TrafficRouting.{where}")
    if route.get("Type") != LISTENER:
        raise schema_error(f"TrafficRouting.{where}.Type must be {LISTENER}")
    return _name(route.get("LogicalID"), f"TrafficRouting.{where}.LogicalID")


def traffic_routing(config: Any) -> dict[str, Any]:
    """TrafficRoutingConfig as a CodeDeploy deployment config's trafficRoutingConfig."""
    if config is None:
        return _time_based("TimeBasedCanary", {})
    config = _object(config, "TrafficRoutingConfig")
    kind = config.get("Type")
    if kind not in ROUTING_TYPES:
        raise schema_error(f"TrafficRoutingConfig.Type must be one of {', '.join(ROUTING_TYPES)}")
    if kind == "AllAtOnce":
        return {"type": "AllAtOnce"}
    block = config.get(kind, {})
    return _time_based(kind, _object(block, f"TrafficRoutingConfig.{kind}"))


def _time_based(kind: str, block: Mapping[str, Any]) -> dict[str, Any]:
    step = block.get("StepPercentage", DEFAULT_STEP)
    bake = block.get("BakeTimeMins", DEFAULT_BAKE)
    where = f"TrafficRoutingConfig.{kind}"
    if not _integer(step) or not MIN_STEP <= int(step) <= 99:
        raise schema_error(f"{where}.StepPercentage must be a whole number from {MIN_STEP} to 99")
    if not _integer(bake) or int(bake) < 0:
        raise schema_error(f"{where}.BakeTimeMins must be a whole number of minutes")
    if kind == "TimeBasedCanary":
        shape = {"canaryPercentage": int(step), "canaryInterval": int(bake)}
        return {"type": kind, "timeBasedCanary": shape}
    shape = {"linearPercentage": int(step), "linearInterval": int(bake)}
    return {"type": kind, "timeBasedLinear": shape}


def _integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.isdigit()


def _termination_wait(options: Any) -> int:
    if options is None:
        return 0
    wait = _object(options, "AdditionalOptions").get("TerminationWaitTimeInMinutes", 0)
    if not _integer(wait) or int(wait) > 120:
        raise schema_error(
            "AdditionalOptions.TerminationWaitTimeInMinutes must be a whole number of "
            "minutes from 0 to 120"
        )
    return int(wait)


def _functions(hooks: Any) -> dict[str, Any]:
    if hooks is None:
        return {}
    hooks = _object(hooks, "LifecycleEventHooks")
    extra = sorted(set(hooks) - set(EVENTS))
    if extra:
        raise schema_error(
            f"LifecycleEventHooks: unknown events [{', '.join(extra)}]; the events are "
            f"{', '.join(EVENTS)}"
        )
    for event, function in hooks.items():
        if not (isinstance(function, str) and function) and not _is_ref(function):
            raise schema_error(f"LifecycleEventHooks.{event} must name a Lambda function")
    return dict(hooks)


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "Ref" in value


def _check_resources(hook: Hook, resources: Mapping[str, Any]) -> None:
    """The logical ids the hook names are resources of the right types; the green ones
    are names for the deployment to create, not resources; the service is EXTERNAL."""

    def expect(logical_id: str, kind: str, where: str) -> dict[str, Any]:
        definition = resources.get(logical_id)
        if not isinstance(definition, dict):
            raise schema_error(f"{where} {logical_id} is not a resource of the template")
        if definition.get("Type") != kind:
            raise schema_error(f"{where} {logical_id} is a {definition.get('Type')}, not a {kind}")
        return definition

    service = expect(hook.service, SERVICE, "Target.LogicalID")
    expect(hook.blue_task_definition, TASK_DEFINITION, "TaskDefinitions")
    expect(hook.blue_task_set, TASK_SET, "TaskSets")
    for green, where in (
        (hook.task_definitions[1], "TaskDefinitions"),
        (hook.task_sets[1], "TaskSets"),
    ):
        if green in resources:
            raise schema_error(
                f"{where}: the green logical id {green} must not be a resource of the "
                "template (the deployment creates the green one)"
            )
    expect(hook.prod_listener, LISTENER, "ProdTrafficRoute.LogicalID")
    if hook.test_listener is not None:
        expect(hook.test_listener, LISTENER, "TestTrafficRoute.LogicalID")
    for group in hook.target_groups:
        expect(group, TARGET_GROUP, "TargetGroups")
    controller = ((service.get("Properties") or {}).get("DeploymentController") or {}).get("Type")
    if controller != "EXTERNAL":
        raise resource_error(
            hook.service,
            "a service deployed by the CodeDeploy blue/green hook needs "
            "DeploymentController: {Type: EXTERNAL}",
        )
    services = [k for k, d in resources.items() if isinstance(d, dict) and d.get("Type") == SERVICE]
    if len(services) > 1:
        raise schema_error(f"only one ECS service per template is supported; found {len(services)}")


# ---- what an update does ---------------------------------------------------------------

# How a resource changes in an update: it is added, removed, replaced (a new physical
# resource) or modified in place.
ADD, REMOVE, REPLACE, MODIFY = "add", "remove", "replace", "modify"


@dataclass(frozen=True)
class Decision:
    """``blue_green``: the update is a green deployment (else it applies directly)."""

    blue_green: bool
    triggers: tuple[str, ...] = ()


DIRECT = Decision(False)


def decide(hook: Hook | None, changes: Mapping[str, str]) -> Decision:
    """Whether an update with ``changes`` (logical id -> ADD/REMOVE/REPLACE/MODIFY, each
    resource's own change, its properties resolved against the resources as they are)
    is a green deployment. Refuses one that also changes anything else."""
    if hook is None:
        return DIRECT
    triggers = tuple(
        logical_id
        for logical_id in (hook.blue_task_definition, hook.blue_task_set)
        if changes.get(logical_id) == REPLACE
        or (logical_id == hook.blue_task_definition and changes.get(logical_id) == MODIFY)
    )
    if not triggers:
        return DIRECT
    others = sorted(set(changes) - set(triggers))
    if others:
        raise hook_error(
            hook.logical_id,
            f"An update that starts a green deployment (it replaces [{', '.join(triggers)}]) "
            f"cannot change other resources in the same stack update; it also changes "
            f"[{', '.join(others)}]. Update those in a separate stack update.",
        )
    return Decision(True, triggers)


def config_name(stack: str, hook: Hook) -> str:
    """A deployment config per schedule (configs cannot change): named after it."""
    digest = hashlib.sha256(json.dumps(hook.routing, sort_keys=True).encode()).hexdigest()
    return f"{application_name(stack)}-{digest[:10]}"


def application_name(stack: str) -> str:
    """The Shipyard-managed CodeDeploy application of a stack's blue/green hook."""
    return f"{MANAGED_PREFIX}{stack}"


MANAGED_PREFIX = "CloudFormation-"


def stack_managed(group: Mapping[str, Any]) -> bool:
    """Whether a deployment group is a stack's blue/green hook's (its service is then
    EXTERNAL, as CloudFormation's are)."""
    return str(group.get("applicationName", "")).startswith(MANAGED_PREFIX)


def changes(
    live: Mapping[str, Mapping[str, Any]],
    rows: Mapping[str, Mapping[str, Any]],
    resolve: Callable[[Any], Any],
) -> dict[str, str]:
    """Each resource's own change in an update: its new properties resolved (``resolve``)
    against the resources as they are now, so a reference to a resource that is about
    to be replaced does not count as a change of the one referring to it."""
    found: dict[str, str] = {}
    for logical_id, definition in live.items():
        row = rows.get(logical_id)
        if row is None:
            found[logical_id] = ADD
            continue
        kind = definition["Type"]
        try:
            props = resolve(definition.get("Properties") or {})
        except TemplateError:  # refers to a resource this update adds
            found[logical_id] = MODIFY
            continue
        if row["resource_type"] != kind or TYPES[kind].needs_replacement(row["properties"], props):
            found[logical_id] = REPLACE
        elif row["properties"] != props:
            found[logical_id] = MODIFY
    for logical_id in rows:
        if logical_id not in live:
            found[logical_id] = REMOVE
    return found


def deployment(
    hook: Hook,
    stack: str,
    rows: Mapping[str, Mapping[str, Any]],
    task_set: Mapping[str, Any],
    resolve: Callable[[Any], Any],
) -> dict[str, Any]:
    """What the green task set's step needs to run the deployment: the Shipyard-managed
    application, config and group, the service, its listeners and target groups as
    they exist (``rows``), the green task set's resolved properties (``task_set``) and
    the hook functions (``resolve`` turns a ``Ref`` to a function into its name)."""

    def physical(logical_id: str) -> str:
        return str(rows[logical_id]["physical_id"])

    balancers = task_set.get("LoadBalancers") or [{}]
    test = [physical(hook.test_listener)] if hook.test_listener else []
    return {
        **hook.to_doc(),
        "application": application_name(stack),
        "group": hook.logical_id,
        "config": config_name(stack, hook),
        "cluster": _last(str(task_set.get("Cluster", ""))),
        "service": _last(str(task_set.get("Service", ""))),
        "taskDefinition": str(task_set.get("TaskDefinition", "")),
        "containerName": str(balancers[0].get("ContainerName", "")),
        "containerPort": int(balancers[0].get("ContainerPort") or 0),
        "prodListeners": [physical(hook.prod_listener)],
        "testListeners": test,
        "targetGroups": [
            str((rows[g].get("attributes") or {}).get("TargetGroupName") or _last(physical(g)))
            for g in hook.target_groups
        ],
        "functions": {event: str(resolve(f)) for event, f in hook.functions.items()},
    }


def _last(name: str) -> str:
    """A service or cluster named by ARN or by name: its name."""
    return name.rsplit("/", 1)[-1]
