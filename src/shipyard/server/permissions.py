"""Roles and what each may do: the one permission table (API, bundle store, console).

- **viewer** reads everything (but secrets) and changes nothing;
- **deployer** also creates, stops, rolls back, pauses, resumes, approves and continues
  deployments and pushes revisions (S3 writes into the bundle store,
  RegisterApplicationRevision);
- **admin** does everything: applications, groups, configs, instances, alarms, users.

The embedded ELBv2's operations are ``elasticloadbalancing:<Operation>`` (see ELBV2).

An operation named in neither table below needs admin, so one added later is closed
until it is placed here. Principals: the admin key is an admin; a user key has its
role; instance and internal keys have none (the agent protocol and bundle reads are
checked where they are served).
"""

from __future__ import annotations

from shipyard.server.context import Principal

VIEWER = "viewer"
DEPLOYER = "deployer"
ADMIN = "admin"
ROLES = (VIEWER, DEPLOYER, ADMIN)
_RANK = {VIEWER: 1, DEPLOYER: 2, ADMIN: 3}

# Permissions that are not API operations.
READ = "shipyard:Read"  # metrics, the console's pages, S3 reads
PUSH_BUNDLE = "s3:PutObject"  # writes into the bundle store

_READ_PREFIXES = ("Get", "BatchGet", "List", "ShipyardGet", "ShipyardList")
# Reads that hand out a secret: admin only.
_SECRET_READS = frozenset({"ShipyardGetTriggerSecret"})

DEPLOYER_OPERATIONS = frozenset(
    {
        "CreateDeployment",
        "StopDeployment",
        "ContinueDeployment",
        "SkipWaitTimeForInstanceTermination",
        "ShipyardRollback",
        "ShipyardPauseDeployment",
        "ShipyardResumeDeployment",
        "ShipyardApproveDeployment",
        "RegisterApplicationRevision",
        "PutLifecycleEventHookExecutionStatus",
        PUSH_BUNDLE,
    }
)


# The embedded ELBv2 (``elasticloadbalancing:<Operation>``): reads for viewers; what a
# deployment does to the load balancers (shift traffic, register and drain tasks, the
# calls CodeDeploy's ECS role is granted) for deployers; the rest for admins.
ELBV2 = "elasticloadbalancing:"
_ELBV2_DEPLOYER = frozenset(
    {"ModifyListener", "ModifyRule", "RegisterTargets", "DeregisterTargets"}
)


def required_role(permission: str) -> str:
    """The least role that holds ``permission`` (an API operation name or a constant above)."""
    if permission.startswith(ELBV2):
        operation = permission.removeprefix(ELBV2)
        if operation.startswith("Describe"):
            return VIEWER
        return DEPLOYER if operation in _ELBV2_DEPLOYER else ADMIN
    if permission == READ:
        return VIEWER
    if permission in DEPLOYER_OPERATIONS:
        return DEPLOYER
    if permission.startswith(_READ_PREFIXES) and permission not in _SECRET_READS:
        return VIEWER
    return ADMIN


def role_of(principal: Principal) -> str | None:
    if principal.kind == "admin":
        return ADMIN
    if principal.kind == "user" and principal.role in _RANK:
        return principal.role
    return None


# What a function worker's own key may call besides CodeDeploy's non-secret reads: report
# its hook, and invoke functions. Not Lambda's reads: they would show other functions'
# environment variables; nothing outside these APIs (metrics, console, bundle store).
_FUNCTION_CALLS = frozenset(
    {("codedeploy", "PutLifecycleEventHookExecutionStatus"), ("lambda", "Invoke")}
)


def function_may(service: str, operation: str) -> bool:
    """The one policy for function keys, whichever API they call."""
    if (service, operation) in _FUNCTION_CALLS:
        return True
    is_operation = ":" not in operation  # not one of the permission constants above
    return service == "codedeploy" and is_operation and required_role(operation) == VIEWER


def allowed(principal: Principal, permission: str) -> bool:
    if principal.kind == "function":
        return function_may("codedeploy", permission)
    role = role_of(principal)
    return role is not None and _RANK[role] >= _RANK[required_role(permission)]


def is_change(operation: str) -> bool:
    """Whether an operation changes something (and is therefore audited)."""
    return required_role(operation) != VIEWER


def denial(principal: Principal, permission: str) -> str:
    """The AccessDeniedException message: who, what permission, which role holds it."""
    role = role_of(principal)
    who = f"{principal.kind} {principal.name!r}" + (f" (role {role})" if role else "")
    api = permission if ":" in permission else f"codedeploy:{permission}"
    return f"{who} is not allowed {api}: it needs the {required_role(permission)} role"


# The embedded ECS API (containers/ecs/api.py), by the same roles: its reads for viewers;
# what a deployment does to a service for deployers (the task-set calls of
# AWSCodeDeployRoleForECS, plus scaling a service and stopping a task); clusters, task
# definitions, creating and deleting services for admins. The server's own internal keys
# (the containers platform's client) may call all of it; instance and function keys none.
_ECS_READ_PREFIXES = ("Describe", "List")
ECS_DEPLOYER_OPERATIONS = frozenset(
    {
        "CreateTaskSet",
        "UpdateServicePrimaryTaskSet",
        "UpdateTaskSet",
        "DeleteTaskSet",
        "UpdateService",
        "StopTask",
    }
)


def ecs_required_role(operation: str) -> str:
    if operation.startswith(_ECS_READ_PREFIXES):
        return VIEWER
    return DEPLOYER if operation in ECS_DEPLOYER_OPERATIONS else ADMIN


def ecs_allowed(principal: Principal, operation: str) -> bool:
    if principal.kind == "internal":
        return True
    role = role_of(principal)
    return role is not None and _RANK[role] >= _RANK[ecs_required_role(operation)]


def ecs_denial(principal: Principal, operation: str) -> str:
    role = role_of(principal)
    who = f"{principal.kind} {principal.name!r}" + (f" (role {role})" if role else "")
    needed = ecs_required_role(operation)
    return f"{who} is not allowed ecs:{operation}: it needs the {needed} role"
