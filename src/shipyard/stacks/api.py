"""The CloudFormation API (Query protocol, 2010-05-15, signing name ``cloudformation``).

Reads need the viewer role, changes admin (a stack can create anything); the server's
own stack key is an admin (server/permissions.py).
"""

from __future__ import annotations

import inspect
from typing import Any

from shipyard.errors import ApiError
from shipyard.server import permissions
from shipyard.server.query_protocol import Operation, QueryCall, QueryService
from shipyard.stacks import change_set_ops, stack_ops

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
READS = frozenset(
    {
        "DescribeStacks",
        "DescribeStackEvents",
        "DescribeStackResources",
        "ListStackResources",
        "ListStacks",
        "GetTemplate",
        "GetTemplateSummary",
        "ValidateTemplate",
        "DescribeChangeSet",
        "ListChangeSets",
    }
)
OPERATIONS: dict[str, Operation] = {
    "CreateStack": stack_ops.create_stack,
    "UpdateStack": stack_ops.update_stack,
    "DeleteStack": stack_ops.delete_stack,
    "DescribeStacks": stack_ops.describe_stacks,
    "DescribeStackEvents": stack_ops.describe_stack_events,
    "DescribeStackResources": stack_ops.describe_stack_resources,
    "ListStackResources": stack_ops.list_stack_resources,
    "ListStacks": stack_ops.list_stacks,
    "GetTemplate": stack_ops.get_template,
    "GetTemplateSummary": stack_ops.get_template_summary,
    "ValidateTemplate": stack_ops.validate_template,
    "CreateChangeSet": change_set_ops.create_change_set,
    "DescribeChangeSet": change_set_ops.describe_change_set,
    "ListChangeSets": change_set_ops.list_change_sets,
    "ExecuteChangeSet": change_set_ops.execute_change_set,
    "DeleteChangeSet": change_set_ops.delete_change_set,
}


def _guarded(action: str, operation: Operation) -> Operation:
    needed = permissions.VIEWER if action in READS else permissions.ADMIN

    async def run(call: QueryCall) -> dict[str, Any]:
        if not permissions.holds(call.principal, needed):
            raise ApiError(
                "AccessDenied",
                f"{call.principal.kind} {call.principal.name!r} is not allowed "
                f"cloudformation:{action}: it needs the {needed} role",
                403,
            )
        result = operation(call)
        return await result if inspect.isawaitable(result) else result

    return run


CLOUDFORMATION = QueryService(
    signing_name="cloudformation",
    namespace=NAMESPACE,
    operations={action: _guarded(action, op) for action, op in OPERATIONS.items()},
    callers=frozenset({"admin", "user", "internal"}),
)
