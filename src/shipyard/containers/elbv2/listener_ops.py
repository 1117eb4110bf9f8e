"""CreateListener, DescribeListeners, ModifyListener, DeleteListener.

A listener is an HAProxy frontend bound at ``elb_bind_address:Port``. A port this load
balancer already listens on is ``DuplicateListener``; a port anything else holds
(another load balancer, another program) is ``InvalidConfigurationRequest``, checked
by binding it before HAProxy is asked to. Changing which target groups a listener
forwards to, or their weights, is a map change at run time; adding, moving or removing
a listener reloads HAProxy (without dropping connections).
"""

from __future__ import annotations

import errno
import socket

from sqlalchemy import Connection

from shipyard.containers.elbv2.actions import read_actions, render_action
from shipyard.containers.elbv2.call import Doc, ElbCall, existing, selected
from shipyard.containers.elbv2.names import configuration, invalid, listener_arn
from shipyard.errors import ApiError
from shipyard.store import elbv2 as store

MAX_LISTENERS = 50


def create_listener(call: ElbCall) -> Doc:
    p = call.params
    lb_arn = p.required("LoadBalancerArn")
    protocol = _protocol(p.text("Protocol", "HTTP") or "HTTP")
    port = p.number("Port", 1, 65535)
    if port is None:
        raise invalid("Port is required")
    with call.changing(lb_arn) as conn:
        _load_balancer(conn, lb_arn)
        actions = read_actions(conn, p.structs("DefaultActions"), lb_arn)
        listeners = store.find(conn, store.LISTENERS, lb_arn=lb_arn)
        same_port = [doc for doc in listeners if doc["Port"] == port]
        if same_port:
            found = same_port[0]
            if found["Protocol"] == protocol and found["DefaultActions"] == actions:
                return {"Listeners": [render(found)]}  # the same call again
            raise ApiError("DuplicateListener", f"A listener already exists on port {port}")
        if len(listeners) >= MAX_LISTENERS:
            raise ApiError(
                "TooManyListeners", f"A load balancer has at most {MAX_LISTENERS} listeners"
            )
        _check_port_free(conn, call.balancers.settings.bind_address, port)
        arn = listener_arn(lb_arn)
        doc = {
            "LoadBalancerArn": lb_arn,
            "Port": port,
            "Protocol": protocol,
            "DefaultActions": actions,
        }
        store.insert(conn, store.LISTENERS, arn, doc, lb_arn=lb_arn, port=port)
        call.balancers.apply(conn, lb_arn)
        return {"Listeners": [render({"Arn": arn, **doc})]}


def modify_listener(call: ElbCall) -> Doc:
    p = call.params
    arn = p.required("ListenerArn")
    with call.changing(arn) as conn:
        doc = _listener(conn, arn)
        lb_arn = doc["LoadBalancerArn"]
        if p.has("Protocol"):
            doc["Protocol"] = _protocol(p.required("Protocol"))
        port = p.number("Port", 1, 65535)
        if port is not None and port != doc["Port"]:
            if any(
                other["Port"] == port for other in store.find(conn, store.LISTENERS, lb_arn=lb_arn)
            ):
                raise ApiError("DuplicateListener", f"A listener already exists on port {port}")
            _check_port_free(conn, call.balancers.settings.bind_address, port)
            doc["Port"] = port
        if p.list_of("DefaultActions") is not None:
            doc["DefaultActions"] = read_actions(conn, p.structs("DefaultActions"), lb_arn)
        store.update(conn, store.LISTENERS, arn, doc, port=doc["Port"])
        call.balancers.apply(conn, lb_arn)
        return {"Listeners": [render(doc)]}


def describe_listeners(call: ElbCall) -> Doc:
    lb_arn, arns = call.params.text("LoadBalancerArn"), call.params.strings("ListenerArns")
    if bool(lb_arn) == bool(arns):
        raise invalid("Specify either LoadBalancerArn or ListenerArns")
    with call.reading() as conn:
        if lb_arn:
            _load_balancer(conn, lb_arn)
            found = store.find(conn, store.LISTENERS, lb_arn=lb_arn)
        else:
            found = store.find(conn, store.LISTENERS)
    found = selected(found, arns, "Arn", "Listener")
    return call.page([render(doc) for doc in found], "Listeners")


def delete_listener(call: ElbCall) -> Doc:
    arn = call.params.required("ListenerArn")
    with call.changing(arn) as conn:
        doc = _listener(conn, arn)
        for rule in store.find(conn, store.RULES, listener_arn=arn):
            store.delete(conn, store.RULES, rule["Arn"])
        store.delete(conn, store.LISTENERS, arn)
        call.balancers.apply(conn, doc["LoadBalancerArn"])
    return {}


def render(doc: Doc) -> Doc:
    return {
        "ListenerArn": doc["Arn"],
        "LoadBalancerArn": doc["LoadBalancerArn"],
        "Port": doc["Port"],
        "Protocol": doc["Protocol"],
        "DefaultActions": [render_action(action) for action in doc["DefaultActions"]],
    }


def _protocol(protocol: str) -> str:
    if protocol != "HTTP":
        raise ApiError(
            "UnsupportedProtocol", f"Listener protocol {protocol[:20]!r} is not supported: use HTTP"
        )
    return protocol


def _load_balancer(conn: Connection, arn: str) -> Doc:
    return existing(conn, store.LOAD_BALANCERS, arn, "LoadBalancer")


def _listener(conn: Connection, arn: str) -> Doc:
    return existing(conn, store.LISTENERS, arn, "Listener")


def _check_port_free(conn: Connection, address: str, port: int) -> None:
    for other in store.find(conn, store.LISTENERS, port=port):
        raise configuration(
            f"Port {port} on {address} is in use by load balancer {other['LoadBalancerArn']}"
        )
    with socket.socket() as probe:
        # As HAProxy binds: connections of the port's past (TIME_WAIT) do not hold it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise configuration(
                    f"Port {port} on {address} is in use by another program"
                ) from None
            raise configuration(f"Cannot listen on {address}:{port}: {exc.strerror}") from None
