"""CloudFormation's stack operations: CreateStack, UpdateStack, DeleteStack and the
reads (DescribeStacks, DescribeStackEvents, DescribeStackResources,
ListStackResources, ListStacks, GetTemplate, GetTemplateSummary, ValidateTemplate)."""

from __future__ import annotations

import json
from typing import Any

from shipyard.errors import ApiError
from shipyard.server.query_protocol import QueryCall
from shipyard.stacks import changes, views
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.members import (
    existing_stack,
    flag,
    from_template_error,
    given_parameters,
    list_member,
    name,
    template_body,
    text,
    validation,
)
from shipyard.stacks.parameters import declared_type
from shipyard.stacks.prepared import stack_arn
from shipyard.stacks.serverless import transforms
from shipyard.stacks.starting import begin, checked, current_definitions, kick, require_updatable
from shipyard.stacks.template import Template, load
from shipyard.stacks.text import parse
from shipyard.store import stacks as store

Result = dict[str, Any]


def create_stack(call: QueryCall) -> Result:
    stack_name = name(call, "StackName", "stackName")
    body = template_body(call)
    region = call.services.config.region
    stack_id = stack_arn(region, stack_name)
    values, _ = checked(call, body, given_parameters(call), {}, stack_name, stack_id)
    on_failure = text(call, "OnFailure") or "ROLLBACK"
    with call.services.db.tx() as conn:
        if store.find_stack(conn, stack_name) is not None:
            raise ApiError("AlreadyExistsException", f"Stack [{stack_name}] already exists")
        store.insert_stack(
            conn,
            stack_id=stack_id,
            name=stack_name,
            status="REVIEW_IN_PROGRESS",
            template_body=body,
            parameters=values,
            capabilities=list_member(call, "Capabilities"),
            tags=list_member(call, "Tags"),
            disable_rollback=flag(call, "DisableRollback") or on_failure == "DO_NOTHING",
            created=call.now(),
        )
        stack = existing_stack(conn, stack_id)
        begin(call, conn, stack, "CREATE_IN_PROGRESS", body, values)
    kick(call)
    return {"StackId": stack_id}


def update_stack(call: QueryCall) -> Result:
    stack_name = name(call, "StackName", "stackName")
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, stack_name)
    require_updatable(stack)
    body = template_body(call, stack["template_body"])
    given = given_parameters(call)
    values, prepared = checked(
        call, body, given, stack["parameters"], stack["name"], stack["stack_id"]
    )
    new = changes.definitions(prepared.template, prepared.parameters)
    if not changes.diff(current_definitions(call, stack), new):
        raise validation("No updates are to be performed.")
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, stack["stack_id"])
        require_updatable(stack)
        begin(call, conn, stack, "UPDATE_IN_PROGRESS", body, values, change_set_id=None)
    kick(call)
    return {"StackId": stack["stack_id"]}


def delete_stack(call: QueryCall) -> Result:
    stack_name = name(call, "StackName", "stackName")
    with call.services.db.tx() as conn:
        stack = store.find_stack(conn, stack_name)
        if stack is None or stack["status"] == "DELETE_COMPLETE":
            return {}
        if stack["status"] == "DELETE_IN_PROGRESS":
            return {}
        if stack["status"].endswith("_IN_PROGRESS") and stack["status"] != "REVIEW_IN_PROGRESS":
            raise validation(
                f"Stack [{stack['name']}] cannot be deleted while in status {stack['status']}"
            )
        begin(call, conn, stack, "DELETE_IN_PROGRESS", stack["template_body"], stack["parameters"])
    kick(call)
    return {}


def describe_stacks(call: QueryCall) -> Result:
    stack_name = text(call, "StackName")
    with call.services.db.tx() as conn:
        rows = [existing_stack(conn, stack_name)] if stack_name else store.list_stacks(conn, False)
    return {"Stacks": [views.stack(row) for row in rows]}


def describe_stack_events(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, text(call, "StackName", required=True))
        rows = store.events(conn, stack["stack_id"])
    return {"StackEvents": [views.event(row) for row in rows]}


def describe_stack_resources(call: QueryCall) -> Result:
    logical_id = text(call, "LogicalResourceId")
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, text(call, "StackName", required=True))
        rows = store.resources(conn, stack["stack_id"])
    return {
        "StackResources": [
            views.resource(stack, row)
            for key, row in rows.items()
            if not logical_id or key == logical_id
        ]
    }


def list_stack_resources(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, text(call, "StackName", required=True))
        rows = store.resources(conn, stack["stack_id"])
    return {"StackResourceSummaries": [views.resource_summary(row) for row in rows.values()]}


def list_stacks(call: QueryCall) -> Result:
    wanted = set(list_member(call, "StackStatusFilter"))
    with call.services.db.tx() as conn:
        rows = store.list_stacks(conn, True)
    return {
        "StackSummaries": [
            views.summary(row) for row in rows if not wanted or row["status"] in wanted
        ]
    }


def get_template(call: QueryCall) -> Result:
    with call.services.db.tx() as conn:
        stack = existing_stack(conn, text(call, "StackName", required=True))
    body = stack["template_body"]
    if text(call, "TemplateStage") == "Processed":
        body = json.dumps(load(body).document, indent=2)
    return {"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]}


def validate_template(call: QueryCall) -> Result:
    body = template_body(call)
    template = _loaded(body)
    return {
        "Parameters": [
            _parameter(key, declaration) for key, declaration in template.parameters.items()
        ],
        "Description": template.description or None,
        "Capabilities": [],
        "DeclaredTransforms": transforms(parse(body)),
    }


def get_template_summary(call: QueryCall) -> Result:
    stack_name = text(call, "StackName")
    if stack_name:
        with call.services.db.tx() as conn:
            body = existing_stack(conn, stack_name)["template_body"]
    else:
        body = template_body(call)
    template = _loaded(body)
    return {
        "Parameters": [
            {
                **_parameter(key, declaration),
                "ParameterType": declared_type(declaration),
                "ParameterConstraints": {"AllowedValues": declaration.get("AllowedValues") or []},
            }
            for key, declaration in template.parameters.items()
        ],
        "Description": template.description or None,
        "ResourceTypes": sorted({d["Type"] for d in template.resources.values()}),
        "Version": str(parse(body).get("AWSTemplateFormatVersion", "2010-09-09")),
        "DeclaredTransforms": transforms(parse(body)),
    }


def _loaded(body: str) -> Template:
    try:
        return load(body)
    except TemplateError as exc:
        raise from_template_error(exc) from None


def _parameter(key: str, declaration: dict[str, Any]) -> dict[str, Any]:
    return {
        "ParameterKey": key,
        "DefaultValue": _default(declaration),
        "NoEcho": str(declaration.get("NoEcho", "false")).lower() == "true",
        "Description": declaration.get("Description"),
    }


def _default(declaration: dict[str, Any]) -> str | None:
    if "Default" not in declaration:
        return None
    value = declaration["Default"]
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
