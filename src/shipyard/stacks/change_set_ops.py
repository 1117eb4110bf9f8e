"""Change sets: CreateChangeSet (the diff is computed at once, so a change set is
CREATE_COMPLETE, or FAILED with "didn't contain changes", by the time it is
described), DescribeChangeSet, ExecuteChangeSet, DeleteChangeSet, ListChangeSets.

A change set of type CREATE for a stack that does not exist creates the stack in
REVIEW_IN_PROGRESS, as CloudFormation does.
"""

from __future__ import annotations

from typing import Any

from shipyard.errors import ApiError
from shipyard.server.query_protocol import QueryCall
from shipyard.stacks import changes, views
from shipyard.stacks.members import (
    existing_stack,
    given_parameters,
    list_member,
    name,
    template_body,
    text,
    validation,
)
from shipyard.stacks.prepared import change_set_arn, stack_arn
from shipyard.stacks.starting import begin, checked, current_definitions, kick, require_updatable
from shipyard.store import stacks as store

Result = dict[str, Any]
Row = dict[str, Any]
NO_CHANGES = (
    "The submitted information didn't contain changes. "
    "Submit different information to create a change set."
)


def create_change_set(call: QueryCall) -> Result:
    stack_name = name(call, "StackName", "stackName")
    change_set_name = name(call, "ChangeSetName", "changeSetName")
    kind = text(call, "ChangeSetType") or "UPDATE"
    if kind not in ("CREATE", "UPDATE"):
        raise validation(f"ChangeSetType {kind} is not supported; use CREATE or UPDATE")
    with call.services.db.tx() as conn:
        stack = store.find_stack(conn, stack_name)
    if kind == "CREATE" and stack is not None and stack["status"] != "REVIEW_IN_PROGRESS":
        raise ApiError(
            "AlreadyExistsException",
            f"Stack [{stack_name}] already exists and cannot be created again with the "
            f"changeSet [{change_set_name}].",
        )
    if kind == "UPDATE":
        if stack is None or stack["status"] == "REVIEW_IN_PROGRESS":
            raise validation(f"Stack [{stack_name}] does not exist")
        require_updatable(stack)
    previous_body = stack["template_body"] if stack else None
    body = template_body(call, previous_body)
    stack_id = stack["stack_id"] if stack else stack_arn(call.services.config.region, stack_name)
    previous_values = stack["parameters"] if stack and kind == "UPDATE" else {}
    values, prepared = checked(
        call, body, given_parameters(call), previous_values, stack_name, stack_id
    )
    old = current_definitions(call, stack) if stack else {}
    found = changes.diff(old, changes.definitions(prepared.template, prepared.parameters))
    change_set_id = change_set_arn(call.services.config.region, change_set_name)
    with call.services.db.tx() as conn:
        if stack is None:
            store.insert_stack(
                conn,
                stack_id=stack_id,
                name=stack_name,
                status="REVIEW_IN_PROGRESS",
                template_body=body,
                parameters=values,
                created=call.now(),
                disable_rollback=False,
            )
        if store.find_change_set(conn, change_set_name, stack_id) is not None:
            raise ApiError(
                "AlreadyExistsException", f"ChangeSet [{change_set_name}] already exists"
            )
        store.insert_change_set(
            conn,
            change_set_id=change_set_id,
            name=change_set_name,
            stack_id=stack_id,
            change_set_type=kind,
            status="CREATE_COMPLETE" if found else "FAILED",
            status_reason=None if found else NO_CHANGES,
            execution_status="AVAILABLE" if found else "UNAVAILABLE",
            template_body=body,
            parameters=values,
            changes=[change.to_json() for change in found],
            description=text(call, "Description") or None,
            capabilities=list_member(call, "Capabilities"),
            tags=list_member(call, "Tags"),
            created=call.now(),
        )
    return {"Id": change_set_id, "StackId": stack_id}


def _find(call: QueryCall, conn: Any) -> tuple[Row, Row]:
    """The change set named by ChangeSetName (and StackName), and its stack."""
    change_set_name = text(call, "ChangeSetName", required=True)
    stack_name = text(call, "StackName")
    stack = store.find_stack(conn, stack_name) if stack_name else None
    found = store.find_change_set(conn, change_set_name, stack["stack_id"] if stack else None)
    if found is None:
        raise ApiError("ChangeSetNotFound", f"ChangeSet [{change_set_name}] does not exist", 404)
    owner = store.find_stack(conn, found["stack_id"])
    if owner is None:
        raise ApiError("ChangeSetNotFound", f"ChangeSet [{change_set_name}] does not exist", 404)
    return found, owner


def describe_change_set(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        found, stack = _find(call, conn)
        rows = store.resources(conn, stack["stack_id"])
    physical_ids = {k: row["physical_id"] for k, row in rows.items() if row.get("physical_id")}
    return views.change_set(found, stack, physical_ids)


def list_change_sets(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, text(call, "StackName", required=True))
        rows = store.change_sets_of(conn, stack["stack_id"])
    return {"Summaries": [views.change_set_summary(row, stack) for row in rows]}


def execute_change_set(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        found, stack = _find(call, conn)
        if found["execution_status"] != "AVAILABLE":
            raise ApiError(
                "InvalidChangeSetStatus",
                f"ChangeSet [{found['change_set_id']}] cannot be executed in its current "
                f"execution status of [{found['execution_status']}]",
            )
        if found["change_set_type"] == "CREATE":
            if stack["status"] != "REVIEW_IN_PROGRESS":
                raise validation(f"Stack [{stack['name']}] already exists")
            status = "CREATE_IN_PROGRESS"
        else:
            require_updatable(stack)
            status = "UPDATE_IN_PROGRESS"
        for other in store.change_sets_of(conn, stack["stack_id"]):
            if other["change_set_id"] != found["change_set_id"]:
                store.update_change_set(conn, other["change_set_id"], execution_status="OBSOLETE")
        store.update_change_set(
            conn, found["change_set_id"], execution_status="EXECUTE_IN_PROGRESS"
        )
        begin(
            call,
            conn,
            stack,
            status,
            found["template_body"],
            found["parameters"],
            change_set_id=found["change_set_id"],
            disable_rollback=text(call, "DisableRollback").lower() == "true",
        )
    kick(call)
    return {}


def delete_change_set(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        found, _stack = _find(call, conn)
        if found["execution_status"] == "EXECUTE_IN_PROGRESS":
            raise ApiError(
                "InvalidChangeSetStatus",
                f"ChangeSet [{found['change_set_id']}] cannot be deleted while it is executed",
            )
        store.delete_change_set(conn, found["change_set_id"])
    return {}
