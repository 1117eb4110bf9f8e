"""Starting stack operations (CreateStack, UpdateStack, ExecuteChangeSet share them):
check, persist the stack's new status, leave the work to the StackRunner."""

from __future__ import annotations

from typing import Any

from shipyard.server.query_protocol import QueryCall
from shipyard.stacks import changes
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.members import from_template_error, validation
from shipyard.stacks.parameters import Given, resolve_parameters
from shipyard.stacks.prepared import Prepared, prepare
from shipyard.stacks.template import load
from shipyard.store import stacks as store

Row = dict[str, Any]
UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})
USER_INITIATED = "User Initiated"


def checked(
    call: QueryCall,
    body: str,
    given: list[Given],
    previous: dict[str, str],
    name: str,
    stack_id: str,
) -> tuple[dict[str, str], Prepared]:
    """Parameter values and the prepared template, or ValidationError."""
    try:
        values = resolve_parameters(load(body).parameters, given, previous)
        prepared = prepare(body, values, call.services.config.region, name, stack_id)
        changes.definitions(prepared.template, prepared.parameters)
    except TemplateError as exc:
        raise from_template_error(exc) from None
    return values, prepared


def current_definitions(call: QueryCall, stack: Row) -> dict[str, Any]:
    """The stack's resources as its current template defines them (none before it
    was created)."""
    if stack["status"] == "REVIEW_IN_PROGRESS":
        return {}
    prepared = prepare(
        stack["template_body"],
        stack["parameters"],
        call.services.config.region,
        stack["name"],
        stack["stack_id"],
    )
    return changes.definitions(prepared.template, prepared.parameters)


def require_updatable(stack: Row) -> None:
    if stack["status"] not in UPDATABLE:
        raise validation(
            f"Stack:{stack['stack_id']} is in {stack['status']} state and can not be updated."
        )


def begin(
    call: QueryCall,
    conn: Any,
    stack: Row,
    status: str,
    body: str,
    values: dict[str, str],
    **extra: Any,
) -> None:
    """Put the stack in ``status`` with its new template; the runner takes it from there."""
    previous = None
    if status == "UPDATE_IN_PROGRESS":
        previous = {"template_body": stack["template_body"], "parameters": stack["parameters"]}
    store.set_status(
        conn,
        stack,
        status,
        USER_INITIATED,
        call.now(),
        template_body=body,
        parameters=values,
        previous=previous,
        description=load(body).description or None,
        updated=call.now() if status == "UPDATE_IN_PROGRESS" else None,
        **extra,
    )


def kick(call: QueryCall) -> None:
    runner = call.services.stack_runner
    if runner is not None:
        runner.kick()
