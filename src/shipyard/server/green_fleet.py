"""Provisioned replacement fleets for blue/green (greenFleetProvisioningOption
COPY_AUTO_SCALING_GROUP): new hosts, as many as the original fleet, started through
the server's provisioner (Podman containers running the agent), registered and
tagged so that they are the deployment's targetInstances and, like the hosts they
replace, members of the deployment group.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from shipyard.config import AgentConfig
from shipyard.errors import ApiError
from shipyard.model import ACCOUNT_ID
from shipyard.provision import GREEN_TAG, Provisioner, ProvisionError
from shipyard.server.context import Call
from shipyard.store import credentials, provisioned, resources
from shipyard.store import instances as instance_store


def _member_tags(group: dict[str, Any]) -> list[dict[str, str]]:
    """Tags that make a host match the group's KEY_AND_VALUE filters."""
    filters = list(group.get("onPremisesInstanceTagFilters") or [])
    for tag_group in (group.get("onPremisesTagSet") or {}).get("onPremisesTagSetList") or []:
        filters.extend(tag_group[:1])  # one tag of each group satisfies the set
    return [
        {"Key": f["Key"], "Value": f["Value"]}
        for f in filters
        if f.get("Key") and f.get("Value") is not None
    ]


async def provision(
    call: Call, provisioner: Provisioner | None, app: str, group: dict[str, Any]
) -> dict[str, Any]:
    """Start the replacement hosts; returns the targetInstances that selects them."""
    if provisioner is None:
        raise ApiError(
            "InvalidTargetInstancesException",
            "COPY_AUTO_SCALING_GROUP needs a provisioner on this server (--provisioner podman)",
        )
    fleet = secrets.token_hex(3)
    now = call.now()
    configs: list[AgentConfig] = []
    with call.services.db.tx() as conn:
        count = max(1, len(resources.instances_for_group(conn, group)))
        tags = [*_member_tags(group), {"Key": GREEN_TAG, "Value": fleet}]
        # Names go on counting (web-1, web-2, ... web-5): predictable, so a load
        # balancer can be configured with them ahead of time, and never reused.
        prefix = f"{group['deploymentGroupName'][:50]}-"
        names = instance_store.list_instance_names(conn)
        suffixes = [n.removeprefix(prefix) for n in names if n.startswith(prefix)]
        used = [int(s) for s in suffixes if s.isdigit()]
        first = max(used, default=0) + 1
        for number in range(first, first + count):
            name = f"{prefix}{number}"
            arn = f"arn:aws:iam::{ACCOUNT_ID}:user/shipyard/{name}"
            instance_store.register_instance(
                conn,
                name=name,
                arn_member="iamUserArn",
                iam_arn=arn,
                instance_arn=f"arn:aws:codedeploy:{call.services.config.region}:"
                f"{ACCOUNT_ID}:instance/{name}",
                now=now,
            )
            instance_store.add_instance_tags(conn, [name], tags)
            provisioned.record(conn, name, call.services.runner.node, now)
            key_id, secret = credentials.issue(
                conn, call.services.db.secret_box, "instance", name, now
            )
            configs.append(
                AgentConfig(
                    endpoint=call.services.config.url,
                    instance_name=name,
                    access_key_id=key_id,
                    secret_access_key=secret,
                    host_identifier=arn,
                    region=call.services.config.region,
                )
            )
    try:
        for config in configs:
            await asyncio.to_thread(provisioner.start_host, config.instance_name, config)
    except ProvisionError as exc:
        raise ApiError("InvalidTargetInstancesException", f"Provisioning failed: {exc}") from None
    return {"tagFilters": [{"Key": GREEN_TAG, "Value": fleet, "Type": "KEY_AND_VALUE"}]}
