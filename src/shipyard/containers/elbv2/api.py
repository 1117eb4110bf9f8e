"""The Elastic Load Balancing v2 API (Query protocol, 2015-12-01) on the server's endpoint.

Requests are ``POST /`` form bodies SigV4-signed for ``elasticloadbalancing`` with keys
Shipyard issued. Who may call what is the server's one role table
(``permissions.required_role`` of ``elasticloadbalancing:<Operation>``): Describe* for
viewers; ModifyListener, ModifyRule, RegisterTargets and DeregisterTargets (what a
deployment does to shift traffic and register tasks) for deployers; everything else for
admins. The server's own internal keys may call everything (the containers platform
drives the load balancers through this API); instance and function keys nothing.
Operations run off the event loop: one that reloads HAProxy takes a few hundred ms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from shipyard.containers.elbv2 import group_ops, lb_ops, listener_ops, rule_ops, target_ops
from shipyard.containers.elbv2.call import Doc, ElbCall
from shipyard.containers.elbv2.names import NAMESPACE, VERSION
from shipyard.errors import ApiError
from shipyard.server import auth, permissions
from shipyard.server.context import Services
from shipyard.server.json_body import read_capped
from shipyard.server.query_protocol import (
    QueryParams,
    error_response,
    parse_form,
    result_response,
)

log = logging.getLogger("shipyard.elbv2")

SIGNING_NAME = "elasticloadbalancing"
_SIGNING = frozenset({SIGNING_NAME})

OPERATIONS: dict[str, Callable[[ElbCall], Doc]] = {
    "CreateLoadBalancer": lb_ops.create_load_balancer,
    "DescribeLoadBalancers": lb_ops.describe_load_balancers,
    "DeleteLoadBalancer": lb_ops.delete_load_balancer,
    "CreateTargetGroup": group_ops.create_target_group,
    "DescribeTargetGroups": group_ops.describe_target_groups,
    "ModifyTargetGroup": group_ops.modify_target_group,
    "DescribeTargetGroupAttributes": group_ops.describe_attributes,
    "ModifyTargetGroupAttributes": group_ops.modify_attributes,
    "DeleteTargetGroup": group_ops.delete_target_group,
    "RegisterTargets": target_ops.register_targets,
    "DeregisterTargets": target_ops.deregister_targets,
    "DescribeTargetHealth": target_ops.describe_target_health,
    "CreateListener": listener_ops.create_listener,
    "DescribeListeners": listener_ops.describe_listeners,
    "ModifyListener": listener_ops.modify_listener,
    "DeleteListener": listener_ops.delete_listener,
    "CreateRule": rule_ops.create_rule,
    "DescribeRules": rule_ops.describe_rules,
    "ModifyRule": rule_ops.modify_rule,
    "DeleteRule": rule_ops.delete_rule,
}


async def handle(request: Request, services: Services) -> Response:
    """Answer one request; counted in the API metrics as ``elbv2:<Operation>``."""
    started = time.perf_counter()
    name, response = await _answer(request, services)
    result = response.headers.get("x-amzn-ErrorType") or "ok"
    services.metrics.api_request(f"elbv2:{name}", result, time.perf_counter() - started)
    return response


async def _answer(request: Request, services: Services) -> tuple[str, Response]:
    """The operation's name (only names that exist: the metrics' labels stay bounded)
    and the answer."""
    name: object = None
    try:
        headers = auth.request_headers(request)
        pending = auth.from_headers(request, headers, services, _SIGNING, ("host",))
        body, digest = await read_capped(request, services.config.max_api_body_bytes)
        principal = pending.verify(digest)
        form = parse_form(body)
        name = form.get("Action")
        operation = OPERATIONS.get(name) if isinstance(name, str) else None
        if operation is None or not isinstance(name, str):
            raise ApiError("InvalidAction", f"Unknown action {str(name)[:100]!r}")
        if form.get("Version") != VERSION:
            raise ApiError("InvalidParameterValue", f"Version must be {VERSION}")
        permission = f"{SIGNING_NAME}:{name}"
        if principal.kind != "internal" and not permissions.allowed(principal, permission):
            raise ApiError("AccessDenied", permissions.denial(principal, permission), 403)
        balancers = services.load_balancers
        if balancers is None:
            raise ApiError("ServiceUnavailable", "The embedded ELBv2 is not running", 503)
        call = ElbCall(services, principal, name, QueryParams(form), balancers)
        result = await run_in_threadpool(operation, call)
        response = result_response(name, NAMESPACE, result)
    except ApiError as exc:
        response = error_response(exc, NAMESPACE)
    except Exception:
        log.exception("ELBv2 API request failed")
        response = error_response(ApiError("InternalFailure", "internal error", 500), NAMESPACE)
    return (name if isinstance(name, str) and name in OPERATIONS else "unknown"), response
