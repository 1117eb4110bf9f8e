"""ELBv2 resources in a stack, on the embedded ELBv2 (a real HAProxy per load
balancer): target groups with their targets, a load balancer, a listener and a rule
are created in dependency order and serve requests; an update moves the listener to
the other group; deleting the stack removes them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port, start_live_server
from tests.elbv2.conftest import TIME_SCALE_MINUTE
from tests.elbv2.web_targets import fetch, wait_healthy, web_targets
from tests.stacks.conftest import events, outputs, settled
from tests.support import wait_until
from tests.traffic.haproxy_process import haproxy_binary

pytestmark = pytest.mark.e2e

TEMPLATE = """\
Parameters:
  Port: {Type: Number}
  BluePort: {Type: Number}
  GreenPort: {Type: Number}
  Live: {Type: String, AllowedValues: [Blue, Green], Default: Blue}
Conditions:
  BlueLive: !Equals [!Ref Live, Blue]
Resources:
  Blue:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      Port: 80
      Protocol: HTTP
      VpcId: vpc-1
      TargetType: ip
      HealthCheckPath: /health
      HealthCheckIntervalSeconds: 5
      Targets: [{Id: 127.0.0.1, Port: !Ref BluePort}]
  Green:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      Port: 80
      Protocol: HTTP
      VpcId: vpc-1
      TargetType: ip
      HealthCheckPath: /health
      HealthCheckIntervalSeconds: 5
      Targets: [{Id: 127.0.0.1, Port: !Ref GreenPort}]
  Balancer:
    Type: AWS::ElasticLoadBalancingV2::LoadBalancer
    Properties: {Subnets: [subnet-1], Type: application}
  Production:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      LoadBalancerArn: !Ref Balancer
      Protocol: HTTP
      Port: !Ref Port
      DefaultActions:
        - Type: forward
          TargetGroupArn: !If [BlueLive, !Ref Blue, !Ref Green]
  Preview:
    Type: AWS::ElasticLoadBalancingV2::ListenerRule
    Properties:
      ListenerArn: !Ref Production
      Priority: 10
      Conditions: [{Field: path-pattern, Values: [/preview/*]}]
      Actions: [{Type: forward, TargetGroupArn: !If [BlueLive, !Ref Green, !Ref Blue]}]
Outputs:
  DNSName: {Value: !GetAtt Balancer.DNSName}
  BlueName: {Value: !GetAtt Blue.TargetGroupName}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    haproxy_binary()  # skips loudly (fails under CI) without HAProxy
    yield from start_live_server(
        tmp_path / "s", elb_keep_running=False, minute_seconds=TIME_SCALE_MINUTE
    )


def test_a_load_balancer_stack(server: LiveServer) -> None:
    cfn: Any = server.client("cloudformation")
    elbv2: Any = server.client("elbv2")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with web_targets("blue", "green") as targets:
        parameters = [
            {"ParameterKey": "Port", "ParameterValue": str(port)},
            {"ParameterKey": "BluePort", "ParameterValue": str(targets["blue"].port)},
            {"ParameterKey": "GreenPort", "ParameterValue": str(targets["green"].port)},
        ]
        cfn.create_stack(StackName="edge", TemplateBody=TEMPLATE, Parameters=parameters)
        stack = settled(cfn, "edge")
        assert stack["StackStatus"] == "CREATE_COMPLETE", events(cfn, "edge")
        created = [e[0] for e in events(cfn, "edge") if e[1] == "CREATE_COMPLETE"]
        assert created.index("Balancer") < created.index("Production") < created.index("Preview")
        assert len(outputs(stack)["BlueName"]) <= 32
        resources = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName="edge")["StackResources"]
        }
        wait_healthy(elbv2, resources["Blue"], 1)
        wait_healthy(elbv2, resources["Green"], 1)
        assert wait_until(lambda: fetch(url) == (200, "blue") or None, "blue behind the listener")
        assert fetch(url + "preview/x") == (200, "green")

        # An update swaps the groups: the listener and the rule are modified in place.
        cfn.update_stack(
            StackName="edge",
            UsePreviousTemplate=True,
            Parameters=[
                *(
                    {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                    for p in parameters
                ),
                {"ParameterKey": "Live", "ParameterValue": "Green"},
            ],
        )
        assert settled(cfn, "edge")["StackStatus"] == "UPDATE_COMPLETE"
        after = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.describe_stack_resources(StackName="edge")["StackResources"]
        }
        assert after == resources  # nothing replaced
        assert wait_until(lambda: fetch(url) == (200, "green") or None, "green behind the listener")
        assert fetch(url + "preview/x") == (200, "blue")

        cfn.delete_stack(StackName="edge")
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack["StackId"], WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
        )
        assert elbv2.describe_load_balancers()["LoadBalancers"] == []
        assert elbv2.describe_target_groups()["TargetGroups"] == []
