"""Stored stacks, resources, events and change sets in the API's shapes."""

from __future__ import annotations

from typing import Any

from shipyard.server.query_protocol import timestamp
from shipyard.stacks.changes import Change

Row = dict[str, Any]


def parameters(values: dict[str, str]) -> list[Row]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def stack(row: Row) -> Row:
    return {
        "StackId": row["stack_id"],
        "StackName": row["name"],
        "ChangeSetId": row.get("change_set_id"),
        "Description": row.get("description") or None,
        "Parameters": parameters(row["parameters"]),
        "CreationTime": timestamp(row["created"]),
        "LastUpdatedTime": timestamp(row["updated"]) if row.get("updated") else None,
        "DeletionTime": timestamp(row["deleted"]) if row.get("deleted") else None,
        "StackStatus": row["status"],
        "StackStatusReason": row.get("status_reason"),
        "DisableRollback": bool(row.get("disable_rollback")),
        "Capabilities": row.get("capabilities") or [],
        "Outputs": row.get("outputs") or [],
        "Tags": row.get("tags") or [],
    }


def summary(row: Row) -> Row:
    return {
        "StackId": row["stack_id"],
        "StackName": row["name"],
        "TemplateDescription": row.get("description") or None,
        "CreationTime": timestamp(row["created"]),
        "LastUpdatedTime": timestamp(row["updated"]) if row.get("updated") else None,
        "DeletionTime": timestamp(row["deleted"]) if row.get("deleted") else None,
        "StackStatus": row["status"],
        "StackStatusReason": row.get("status_reason"),
    }


def event(row: Row) -> Row:
    return {
        "StackId": row["stack_id"],
        "EventId": row["event_id"],
        "StackName": row["stack_name"],
        "LogicalResourceId": row["logical_id"],
        "PhysicalResourceId": row.get("physical_id"),
        "ResourceType": row["resource_type"],
        "Timestamp": timestamp(row["timestamp"]),
        "ResourceStatus": row["status"],
        "ResourceStatusReason": row.get("reason"),
    }


def resource(stack_row: Row, row: Row) -> Row:
    return {
        "StackName": stack_row["name"],
        "StackId": stack_row["stack_id"],
        "LogicalResourceId": row["logical_id"],
        "PhysicalResourceId": row.get("physical_id"),
        "ResourceType": row["resource_type"],
        "Timestamp": timestamp(row["updated"]),
        "ResourceStatus": row["status"],
        "ResourceStatusReason": row.get("status_reason"),
    }


def resource_summary(row: Row) -> Row:
    return {
        "LogicalResourceId": row["logical_id"],
        "PhysicalResourceId": row.get("physical_id"),
        "ResourceType": row["resource_type"],
        "LastUpdatedTimestamp": timestamp(row["updated"]),
        "ResourceStatus": row["status"],
        "ResourceStatusReason": row.get("status_reason"),
    }


def change(data: Row, physical_ids: dict[str, str]) -> Row:
    found = Change.from_json(data)
    details = [
        {
            "Target": {
                "Attribute": "Properties",
                "Name": name,
                "RequiresRecreation": "Conditional",
            },
            "Evaluation": "Static",
            "ChangeSource": "DirectModification",
        }
        for name in found.changed_properties
        if name != "Type"
    ] + [
        {
            "Target": {"Attribute": "Properties", "RequiresRecreation": "Conditional"},
            "Evaluation": "Dynamic",
            "ChangeSource": "ResourceReference",
            "CausingEntity": cause,
        }
        for cause in found.caused_by
    ]
    body: Row = {
        "Action": found.action,
        "LogicalResourceId": found.logical_id,
        "PhysicalResourceId": physical_ids.get(found.logical_id),
        "ResourceType": found.resource_type,
        "Replacement": found.replacement or None,
        "Scope": list(found.scope) if found.action == "Modify" else None,
        "Details": details if found.action == "Modify" else None,
    }
    return {"Type": "Resource", "ResourceChange": body}


def change_set(row: Row, stack_row: Row, physical_ids: dict[str, str]) -> Row:
    return {
        "ChangeSetName": row["name"],
        "ChangeSetId": row["change_set_id"],
        "StackId": stack_row["stack_id"],
        "StackName": stack_row["name"],
        "Description": row.get("description"),
        "Parameters": parameters(row["parameters"]),
        "CreationTime": timestamp(row["created"]),
        "ExecutionStatus": row["execution_status"],
        "Status": row["status"],
        "StatusReason": row.get("status_reason"),
        "Capabilities": row.get("capabilities") or [],
        "Tags": row.get("tags") or [],
        "Changes": [change(data, physical_ids) for data in row["changes"]],
    }


def change_set_summary(row: Row, stack_row: Row) -> Row:
    return {
        "StackId": stack_row["stack_id"],
        "StackName": stack_row["name"],
        "ChangeSetId": row["change_set_id"],
        "ChangeSetName": row["name"],
        "ExecutionStatus": row["execution_status"],
        "Status": row["status"],
        "StatusReason": row.get("status_reason"),
        "CreationTime": timestamp(row["created"]),
        "Description": row.get("description"),
    }
