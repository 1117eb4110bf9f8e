"""CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer.

A load balancer is an HAProxy process, started at creation (state ``active`` once it
answers) and stopped at deletion. Its DNSName is the address its listeners bind
(``elb_bind_address``), so ``http://<DNSName>:<port>`` reaches a listener.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shipyard.containers.elbv2.call import Doc, ElbCall, created_before, selected
from shipyard.containers.elbv2.names import (
    check_name,
    invalid,
    load_balancer_arn,
)
from shipyard.errors import ApiError
from shipyard.store import elbv2 as store

VPC_ID = "vpc-shipyard"
HOSTED_ZONE = "ZSHIPYARDLOCAL"


def create_load_balancer(call: ElbCall) -> Doc:
    p = call.params
    name = check_name("Load balancer", p.required("Name"))
    kind = p.text("Type", "application")
    if kind != "application":
        raise invalid(
            f"Load balancer type {kind!r} is not supported: "
            "Shipyard runs application load balancers"
        )
    scheme = p.text("Scheme", "internet-facing")
    if scheme not in ("internet-facing", "internal"):
        raise invalid(f"Invalid Scheme {scheme!r}")
    address_type = p.text("IpAddressType", "ipv4")
    if address_type != "ipv4":
        raise invalid(
            f"IpAddressType {address_type!r} is not supported: Shipyard's listeners are ipv4"
        )
    settings = {
        "LoadBalancerName": name,
        "Scheme": scheme,
        "Type": kind,
        "IpAddressType": address_type,
        "SecurityGroups": p.strings("SecurityGroups") or [],
    }
    with call.changing(f"loadbalancer/{name}") as conn:
        duplicate = ApiError(
            "DuplicateLoadBalancerName",
            f"A load balancer with the name {name!r} already exists with other settings",
        )
        before = created_before(conn, store.LOAD_BALANCERS, name, settings, duplicate)
        if before is not None:
            return {"LoadBalancers": [render(call, before)]}
        arn = load_balancer_arn(call.region, name)
        doc = {**settings, "CreatedTime": call.now()}
        store.insert(conn, store.LOAD_BALANCERS, arn, doc, name=name)
        call.balancers.apply(conn, arn)
        return {"LoadBalancers": [render(call, {"Arn": arn, **doc})]}


def describe_load_balancers(call: ElbCall) -> Doc:
    arns = call.params.strings("LoadBalancerArns")
    names = call.params.strings("Names")
    if arns and names:
        raise invalid("Specify LoadBalancerArns or Names, not both")
    with call.reading() as conn:
        found = store.find(conn, store.LOAD_BALANCERS)
    found = selected(found, arns, "Arn", "LoadBalancer")
    found = selected(found, names, "LoadBalancerName", "LoadBalancer")
    return call.page([render(call, doc) for doc in found], "LoadBalancers")


def delete_load_balancer(call: ElbCall) -> Doc:
    arn = call.params.required("LoadBalancerArn")
    with call.changing(arn) as conn:
        if store.get(conn, store.LOAD_BALANCERS, arn) is None:
            return {}  # deleting what is gone succeeds, as on AWS
        for listener in store.find(conn, store.LISTENERS, lb_arn=arn):
            for rule in store.find(conn, store.RULES, listener_arn=listener["Arn"]):
                store.delete(conn, store.RULES, rule["Arn"])
            store.delete(conn, store.LISTENERS, listener["Arn"])
        store.delete(conn, store.LOAD_BALANCERS, arn)
        call.balancers.remove(arn)
    return {}


def render(call: ElbCall, doc: Doc) -> dict[str, Any]:
    return {
        "LoadBalancerArn": doc["Arn"],
        "DNSName": call.balancers.settings.bind_address,
        "CanonicalHostedZoneId": HOSTED_ZONE,
        "CreatedTime": dt.datetime.fromtimestamp(doc["CreatedTime"], dt.UTC),
        "LoadBalancerName": doc["LoadBalancerName"],
        "Scheme": doc["Scheme"],
        "VpcId": VPC_ID,
        "State": {"Code": "active"},
        "Type": doc["Type"],
        "AvailabilityZones": [],
        "SecurityGroups": doc["SecurityGroups"],
        "IpAddressType": doc["IpAddressType"],
    }
