"""The ELBv2 API through boto3 and the AWS CLI: shapes, idempotency, pages, roles, and
bad input answered with the model's error codes (nothing stored changes)."""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, free_port, on_both_databases, start_live_server
from tests.elbv2.scenario import forward, target_group
from tests.server.test_roles import client_as, make_user


def code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


@on_both_databases
def test_create_describe_delete_and_idempotency(elbv2: Any) -> None:
    lb = elbv2.create_load_balancer(Name="web")["LoadBalancers"][0]
    assert lb["State"] == {"Code": "active"}
    assert lb["LoadBalancerArn"].startswith(
        "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/"
    )
    again = elbv2.create_load_balancer(Name="web")["LoadBalancers"][0]
    assert again["LoadBalancerArn"] == lb["LoadBalancerArn"]
    assert code(elbv2.create_load_balancer, Name="web", Scheme="internal") == (
        "DuplicateLoadBalancerName"
    )
    tg = target_group(elbv2, "blue")
    assert target_group(elbv2, "blue") == tg
    assert code(target_group, elbv2=elbv2, name="blue", Port=81) == "DuplicateTargetGroupName"
    port = free_port()
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=port,
        DefaultActions=forward(tg),
    )["Listeners"][0]
    same = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=port,
        DefaultActions=forward(tg),
    )["Listeners"][0]
    assert same["ListenerArn"] == listener["ListenerArn"]
    described = elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])
    assert [g["TargetGroupArn"] for g in described["TargetGroups"]] == [tg]
    assert described["TargetGroups"][0]["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    attributes = elbv2.modify_target_group_attributes(
        TargetGroupArn=tg,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}],
    )["Attributes"]
    assert attributes == [{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}]
    modified = elbv2.modify_target_group(TargetGroupArn=tg, HealthCheckPath="/ready")
    assert modified["TargetGroups"][0]["HealthCheckPath"] == "/ready"
    assert code(elbv2.delete_target_group, TargetGroupArn=tg) == "ResourceInUse"
    elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    elbv2.delete_target_group(TargetGroupArn=tg)
    elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert elbv2.describe_target_groups()["TargetGroups"] == []


def test_pages(elbv2: Any) -> None:
    arns = sorted(target_group(elbv2, f"tg-{n}") for n in range(5))
    first = elbv2.describe_target_groups(PageSize=2)
    assert len(first["TargetGroups"]) == 2 and first["NextMarker"]
    seen = [g["TargetGroupArn"] for g in first["TargetGroups"]]
    marker = first["NextMarker"]
    while marker:
        page = elbv2.describe_target_groups(PageSize=2, Marker=marker)
        seen += [g["TargetGroupArn"] for g in page["TargetGroups"]]
        marker = page.get("NextMarker")
    assert seen == arns
    paginated = elbv2.get_paginator("describe_target_groups").paginate(PageSize=3)
    assert [g["TargetGroupArn"] for p in paginated for g in p["TargetGroups"]] == arns


def test_rules(elbv2: Any) -> None:
    lb = elbv2.create_load_balancer(Name="web")["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = target_group(elbv2, "blue"), target_group(elbv2, "green")
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Port=free_port(), DefaultActions=forward(blue)
    )
    listener_arn = listener["Listeners"][0]["ListenerArn"]
    condition = [{"Field": "host-header", "HostHeaderConfig": {"Values": ["test.*"]}}]
    rule = elbv2.create_rule(
        ListenerArn=listener_arn, Priority=5, Conditions=condition, Actions=forward(green)
    )["Rules"][0]
    assert rule["Priority"] == "5" and rule["IsDefault"] is False
    assert (
        code(
            elbv2.create_rule,
            ListenerArn=listener_arn,
            Priority=5,
            Conditions=condition,
            Actions=forward(green),
        )
        == "PriorityInUse"
    )
    rules = elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "default"]
    weighted = [
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": blue, "Weight": 1},
                    {"TargetGroupArn": green, "Weight": 3},
                ]
            },
        }
    ]
    elbv2.modify_rule(RuleArn=rule["RuleArn"], Actions=weighted)
    default = rules[1]["RuleArn"]
    elbv2.modify_rule(RuleArn=default, Actions=forward(green))
    listener_now = elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]
    assert listener_now["DefaultActions"][0]["TargetGroupArn"] == green
    assert code(elbv2.delete_rule, RuleArn=default) == "OperationNotPermitted"
    elbv2.delete_rule(RuleArn=rule["RuleArn"])
    assert code(elbv2.describe_rules, RuleArns=[rule["RuleArn"]]) == "RuleNotFound"


def test_bad_input_has_the_model_error_codes(elbv2: Any) -> None:
    lb = elbv2.create_load_balancer(Name="web")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = target_group(elbv2, "blue")
    missing_tg = tg.rsplit("/", 1)[0] + "/0000000000000000"
    missing_lb = lb.rsplit("/", 1)[0] + "/0000000000000000"
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb, Port=port, DefaultActions=forward(tg))
    cases = [
        (elbv2.describe_target_groups, {"TargetGroupArns": [missing_tg]}, "TargetGroupNotFound"),
        (elbv2.describe_load_balancers, {"LoadBalancerArns": [missing_lb]}, "LoadBalancerNotFound"),
        (
            elbv2.describe_listeners,
            {"ListenerArns": [lb.replace(":loadbalancer/", ":listener/") + "/00"]},
            "ListenerNotFound",
        ),
        (
            elbv2.register_targets,
            {"TargetGroupArn": missing_tg, "Targets": [{"Id": "127.0.0.1"}]},
            "TargetGroupNotFound",
        ),
        (
            elbv2.register_targets,
            {"TargetGroupArn": tg, "Targets": [{"Id": "i-12345"}]},
            "InvalidTarget",
        ),
        (
            elbv2.deregister_targets,
            {"TargetGroupArn": tg, "Targets": [{"Id": "127.0.0.1", "Port": 9}]},
            "InvalidTarget",
        ),
        (
            elbv2.create_listener,
            {"LoadBalancerArn": lb, "Port": port, "DefaultActions": forward(tg), "Protocol": "HTTP"}
            | {
                "DefaultActions": [
                    {
                        "Type": "forward",
                        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 2}]},
                    }
                ]
            },
            "DuplicateListener",
        ),
        (
            elbv2.create_listener,
            {"LoadBalancerArn": missing_lb, "Port": free_port(), "DefaultActions": forward(tg)},
            "LoadBalancerNotFound",
        ),
        (
            elbv2.create_listener,
            {"LoadBalancerArn": lb, "Port": free_port(), "DefaultActions": forward(missing_tg)},
            "TargetGroupNotFound",
        ),
        (
            elbv2.create_listener,
            {
                "LoadBalancerArn": lb,
                "Port": free_port(),
                "DefaultActions": [
                    {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}
                ],
            },
            "InvalidLoadBalancerAction",
        ),
        (
            elbv2.create_listener,
            {
                "LoadBalancerArn": lb,
                "Port": free_port(),
                "Protocol": "HTTPS",
                "DefaultActions": forward(tg),
            },
            "UnsupportedProtocol",
        ),
        (elbv2.create_target_group, {"Name": "bad-", "Port": 80}, "ValidationError"),
        (
            elbv2.create_target_group,
            {"Name": "tg2", "HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 5},
            "ValidationError",
        ),
        (
            elbv2.create_target_group,
            {"Name": "tg2", "Matcher": {"HttpCode": "600"}},
            "ValidationError",
        ),
        (elbv2.create_load_balancer, {"Name": "nlb", "Type": "network"}, "ValidationError"),
    ]
    for call, kwargs, expected in cases:
        assert code(call, **kwargs) == expected, (call, kwargs)
    assert [g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]] == [
        "blue"
    ]
    assert len(elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]) == 1


def test_ports_in_use(elbv2: Any) -> None:
    first = elbv2.create_load_balancer(Name="one")["LoadBalancers"][0]["LoadBalancerArn"]
    second = elbv2.create_load_balancer(Name="two")["LoadBalancers"][0]["LoadBalancerArn"]
    tg_one, tg_two = target_group(elbv2, "one"), target_group(elbv2, "two")
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=first, Port=port, DefaultActions=forward(tg_one))
    with pytest.raises(ClientError) as caught:
        elbv2.create_listener(LoadBalancerArn=second, Port=port, DefaultActions=forward(tg_two))
    assert caught.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
    assert "in use by load balancer" in caught.value.response["Error"]["Message"]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ClientError) as caught:
            elbv2.create_listener(
                LoadBalancerArn=second, Port=taken, DefaultActions=forward(tg_two)
            )
    assert caught.value.response["Error"]["Code"] == "InvalidConfigurationRequest"
    assert "another program" in caught.value.response["Error"]["Message"]
    # A group serves one load balancer.
    assert (
        code(
            elbv2.create_listener,
            LoadBalancerArn=second,
            Port=free_port(),
            DefaultActions=forward(tg_one),
        )
        == "TargetGroupAssociationLimit"
    )


def test_roles(elb_server: LiveServer) -> None:
    admin = elb_server.client("elbv2")
    lb = admin.create_load_balancer(Name="web")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = target_group(admin, "blue")
    listener = admin.create_listener(
        LoadBalancerArn=lb, Port=free_port(), DefaultActions=forward(tg)
    )
    listener_arn = listener["Listeners"][0]["ListenerArn"]
    viewer = client_as(elb_server, make_user(elb_server, "vera", "viewer"), "elbv2")
    deployer = client_as(elb_server, make_user(elb_server, "dan", "deployer"), "elbv2")
    assert viewer.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    assert code(viewer.modify_listener, ListenerArn=listener_arn, DefaultActions=forward(tg)) == (
        "AccessDenied"
    )
    deployer.modify_listener(ListenerArn=listener_arn, DefaultActions=forward(tg))
    assert code(deployer.create_load_balancer, Name="other") == "AccessDenied"


def test_the_aws_cli(elb_server: LiveServer) -> None:
    def aws(*args: str) -> Any:
        done = subprocess.run(
            [".venv/bin/aws", "elbv2", *args, "--endpoint-url", elb_server.url, "--output", "json"],
            env=elb_server.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.returncode, (json.loads(done.stdout) if done.stdout.strip() else done.stderr)

    status, created = aws("create-load-balancer", "--name", "cli-lb")
    assert status == 0, created
    lb = created["LoadBalancers"][0]["LoadBalancerArn"]
    status, tg = aws(
        "create-target-group",
        "--name",
        "cli-tg",
        "--protocol",
        "HTTP",
        "--port",
        "80",
        "--target-type",
        "ip",
    )
    assert status == 0, tg
    tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
    status, listener = aws(
        "create-listener",
        "--load-balancer-arn",
        lb,
        "--protocol",
        "HTTP",
        "--port",
        str(free_port()),
        "--default-actions",
        f"Type=forward,TargetGroupArn={tg_arn}",
    )
    assert status == 0, listener
    status, described = aws("describe-listeners", "--load-balancer-arn", lb)
    assert (
        status == 0 and described["Listeners"][0]["DefaultActions"][0]["TargetGroupArn"] == tg_arn
    )
    status, error = aws("describe-target-groups", "--names", "nope")
    assert status != 0 and "TargetGroupNotFound" in error


def test_without_haproxy_the_api_says_so(tmp_path: Any) -> None:
    for server in start_live_server(tmp_path / "s", elb_haproxy="off"):
        with pytest.raises(ClientError) as caught:
            server.client("elbv2").describe_load_balancers()
        assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
