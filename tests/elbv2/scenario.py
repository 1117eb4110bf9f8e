"""A load balancer set up as CodeDeploy's ECS blue/green finds it: target groups blue
and green, a production listener forwarding to blue, a test listener forwarding to
green, and a rule on the production listener sending /preview/* to green."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import free_port
from tests.elbv2.web_targets import WebTarget, wait_healthy


@dataclass
class Balancer:
    elbv2: Any
    lb_arn: str
    groups: dict[str, str]  # name -> target group ARN
    production: str  # listener ARNs
    test: str
    production_port: int
    test_port: int

    @property
    def production_url(self) -> str:
        return f"http://127.0.0.1:{self.production_port}/"

    @property
    def test_url(self) -> str:
        return f"http://127.0.0.1:{self.test_port}/"

    def shift(self, weights: dict[str, int]) -> None:
        """The production listener's default action, forwarding by ``weights``."""
        groups = [{"TargetGroupArn": self.groups[n], "Weight": w} for n, w in weights.items()]
        self.elbv2.modify_listener(
            ListenerArn=self.production,
            DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
        )

    def register(self, group: str, targets: list[WebTarget]) -> None:
        self.elbv2.register_targets(
            TargetGroupArn=self.groups[group],
            Targets=[{"Id": "127.0.0.1", "Port": t.port} for t in targets],
        )


def target_group(elbv2: Any, name: str, **extra: Any) -> str:
    settings: dict[str, Any] = {
        "Protocol": "HTTP",
        "Port": 80,
        "VpcId": "vpc-1",
        "TargetType": "ip",
        "HealthCheckPath": "/health",
        "HealthCheckIntervalSeconds": 5,
        "HealthCheckTimeoutSeconds": 2,
        "HealthyThresholdCount": 2,
        "UnhealthyThresholdCount": 2,
        **extra,
    }
    found = elbv2.create_target_group(Name=name, **settings)
    return str(found["TargetGroups"][0]["TargetGroupArn"])


def forward(tg_arn: str) -> list[dict[str, Any]]:
    return [{"Type": "forward", "TargetGroupArn": tg_arn}]


def blue_green(elbv2: Any, blue: list[WebTarget], green: list[WebTarget]) -> Balancer:
    lb = elbv2.create_load_balancer(Name="shop", Subnets=["subnet-1"], Type="application")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    groups = {"blue": target_group(elbv2, "blue"), "green": target_group(elbv2, "green")}
    ports = free_port(), free_port()
    listeners = [
        elbv2.create_listener(
            LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port, DefaultActions=forward(arn)
        )["Listeners"][0]["ListenerArn"]
        for port, arn in zip(ports, (groups["blue"], groups["green"]), strict=True)
    ]
    elbv2.create_rule(
        ListenerArn=listeners[0],
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/preview/*"]}}],
        Actions=forward(groups["green"]),
    )
    balancer = Balancer(elbv2, lb_arn, groups, listeners[0], listeners[1], *ports)
    balancer.register("blue", blue)
    balancer.register("green", green)
    wait_healthy(elbv2, groups["blue"], len(blue))
    wait_healthy(elbv2, groups["green"], len(green))
    return balancer
