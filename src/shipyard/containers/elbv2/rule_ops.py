"""CreateRule, DescribeRules, ModifyRule, DeleteRule: what a test listener needs (forward
by path-pattern or host-header, lower priority first, the listener's default action
last). DescribeRules shows the default rule too (``Priority: default``,
``IsDefault: true``); ModifyRule on it changes the listener's default actions.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection

from shipyard.containers.elbv2.actions import (
    read_actions,
    read_conditions,
    render_action,
    render_condition,
)
from shipyard.containers.elbv2.call import Doc, ElbCall, existing, selected
from shipyard.containers.elbv2.names import invalid, not_found, rule_arn
from shipyard.errors import ApiError
from shipyard.store import elbv2 as store

MAX_RULES = 100


def default_rule_arn(listener: str) -> str:
    """The default rule's ARN: fixed per listener, like the rule it stands for."""
    digest = hashlib.sha256(listener.encode()).hexdigest()[:16]
    return listener.replace(":listener/", ":listener-rule/", 1) + "/" + digest


def create_rule(call: ElbCall) -> Doc:
    p = call.params
    listener_arn = p.required("ListenerArn")
    priority = p.number("Priority", 1, 50000)
    if priority is None:
        raise invalid("Priority is required")
    with call.changing(listener_arn) as conn:
        listener = _listener(conn, listener_arn)
        lb_arn = listener["LoadBalancerArn"]
        conditions = read_conditions(p.structs("Conditions"))
        actions = read_actions(conn, p.structs("Actions"), lb_arn)
        rules = store.find(conn, store.RULES, listener_arn=listener_arn)
        if any(rule["Priority"] == priority for rule in rules):
            raise ApiError("PriorityInUse", f"Priority {priority} is currently in use")
        if len(rules) >= MAX_RULES:
            raise ApiError("TooManyRules", f"A listener has at most {MAX_RULES} rules")
        arn = rule_arn(listener_arn)
        doc = {
            "ListenerArn": listener_arn,
            "Priority": priority,
            "Conditions": conditions,
            "Actions": actions,
        }
        store.insert(conn, store.RULES, arn, doc, listener_arn=listener_arn, priority=priority)
        call.balancers.apply(conn, lb_arn)
        return {"Rules": [render({"Arn": arn, **doc})]}


def modify_rule(call: ElbCall) -> Doc:
    p = call.params
    arn = p.required("RuleArn")
    with call.changing(arn) as conn:
        rule, listener = _rule(conn, arn)
        lb_arn = listener["LoadBalancerArn"]
        given_actions = p.list_of("Actions") is not None
        if rule is None:  # the default rule: its actions are the listener's
            if p.list_of("Conditions") is not None:
                raise ApiError("OperationNotPermitted", "The default rule has no conditions")
            if given_actions:
                listener["DefaultActions"] = read_actions(conn, p.structs("Actions"), lb_arn)
                store.update(conn, store.LISTENERS, listener["Arn"], listener)
            call.balancers.apply(conn, lb_arn)
            return {"Rules": [_default(listener)]}
        if p.list_of("Conditions") is not None:
            rule["Conditions"] = read_conditions(p.structs("Conditions"))
        if given_actions:
            rule["Actions"] = read_actions(conn, p.structs("Actions"), lb_arn)
        store.update(conn, store.RULES, arn, rule)
        call.balancers.apply(conn, lb_arn)
        return {"Rules": [render(rule)]}


def describe_rules(call: ElbCall) -> Doc:
    listener_arn, arns = call.params.text("ListenerArn"), call.params.strings("RuleArns")
    if bool(listener_arn) == bool(arns):
        raise invalid("Specify either ListenerArn or RuleArns")
    with call.reading() as conn:
        listeners = (
            [_listener(conn, listener_arn)] if listener_arn else store.find(conn, store.LISTENERS)
        )
        found: list[Doc] = []
        for listener in listeners:
            rules = store.find(conn, store.RULES, listener_arn=listener["Arn"])
            found += [render(rule) for rule in sorted(rules, key=lambda r: int(r["Priority"]))]
            found.append(_default(listener))
    found = selected(found, arns, "RuleArn", "Rule")
    return call.page(found, "Rules")


def delete_rule(call: ElbCall) -> Doc:
    arn = call.params.required("RuleArn")
    with call.changing(arn) as conn:
        rule, listener = _rule(conn, arn)
        if rule is None:
            raise ApiError("OperationNotPermitted", "The default rule cannot be deleted")
        store.delete(conn, store.RULES, arn)
        call.balancers.apply(conn, listener["LoadBalancerArn"])
    return {}


def render(doc: Doc) -> Doc:
    return {
        "RuleArn": doc["Arn"],
        "Priority": str(doc["Priority"]),
        "Conditions": [render_condition(c) for c in doc["Conditions"]],
        "Actions": [render_action(a) for a in doc["Actions"]],
        "IsDefault": False,
    }


def _default(listener: Doc) -> Doc:
    return {
        "RuleArn": default_rule_arn(listener["Arn"]),
        "Priority": "default",
        "Conditions": [],
        "Actions": [render_action(a) for a in listener["DefaultActions"]],
        "IsDefault": True,
    }


def _listener(conn: Connection, arn: str) -> Doc:
    return existing(conn, store.LISTENERS, arn, "Listener")


def _rule(conn: Connection, arn: str) -> tuple[Doc | None, Doc]:
    """The rule and its listener; (None, listener) for a listener's default rule."""
    rule = store.get(conn, store.RULES, arn)
    if rule is not None:
        return rule, _listener(conn, rule["ListenerArn"])
    listener_arn = arn.replace(":listener-rule/", ":listener/", 1).rsplit("/", 1)[0]
    listener = store.get(conn, store.LISTENERS, listener_arn)
    if listener is None or default_rule_arn(listener_arn) != arn:
        raise not_found("Rule", arn)
    return None, listener
