"""ECS resources in a stack, on the embedded ECS (real Podman containers) behind the
embedded ELBv2 (a real HAProxy): a cluster, a task definition, an EXTERNAL-controller
service with a task set behind a target group and listener, made primary; its scale,
the service's desired count and the task definition change through stack updates; a
task set whose tasks keep failing rolls the update back; deleting the stack removes
everything. Also a plain ECS-controller service, and bad input that fails a resource
with ECS's message and rolls the stack back leaving nothing behind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipyard.containers.ecs.images import HTTPD_IMAGE
from tests.conftest import LiveServer, free_port
from tests.ecs_support import embedded_ecs_server
from tests.elbv2.conftest import TIME_SCALE_MINUTE
from tests.elbv2.web_targets import fetch
from tests.stacks.conftest import events, outputs, settled
from tests.support import wait_until

# Several stack operations a test, each waiting for containers on a loaded machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SETTLE = 240.0  # tasks start on a loaded two-core machine: wait long, return early

DEFINITION = f"""\
  Definition:
    Type: AWS::ECS::TaskDefinition
    Properties:
      NetworkMode: bridge
      ContainerDefinitions:
        - Name: web
          Image: {HTTPD_IMAGE}
          Essential: true
          Memory: 64
          PortMappings: [{{ContainerPort: 80}}]
          Environment: [{{Name: VERSION, Value: !Ref Version}}]
          Command: !If [Broken, [sh, -c, "exit 3"], !Ref AWS::NoValue]
"""
PARAMETERS = """\
Parameters:
  Version: {Type: String, Default: "1"}
  Broken: {Type: String, Default: "no", AllowedValues: ["yes", "no"]}
  Count: {Type: Number, Default: 2}
  Port: {Type: Number, Default: 0}
  Scale: {Type: Number, Default: 100}
Conditions:
  Broken: !Equals [!Ref Broken, "yes"]
"""
# The parameters, a cluster and the task definition every template here starts with.
BASE = PARAMETERS + "Resources:\n  Cluster:\n    Type: AWS::ECS::Cluster\n" + DEFINITION
EXTERNAL = (
    BASE
    + """\
  Blue:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties:
      {Port: 80, Protocol: HTTP, VpcId: vpc-1, TargetType: ip, HealthCheckPath: /,
       HealthCheckIntervalSeconds: 5, HealthyThresholdCount: 2,
       TargetGroupAttributes: [{Key: deregistration_delay.timeout_seconds, Value: 5}]}
  Balancer: {Type: AWS::ElasticLoadBalancingV2::LoadBalancer, Properties: {Type: application}}
  Production:
    Type: AWS::ElasticLoadBalancingV2::Listener
    Properties:
      {LoadBalancerArn: !Ref Balancer, Port: !Ref Port, Protocol: HTTP,
       DefaultActions: [{Type: forward, TargetGroupArn: !Ref Blue}]}
  Service:
    Type: AWS::ECS::Service
    Properties:
      Cluster: !Ref Cluster
      DesiredCount: !Ref Count
      DeploymentController: {Type: EXTERNAL}
  TaskSet:
    Type: AWS::ECS::TaskSet
    DependsOn: Production  # a load balancer health-checks the groups it forwards to
    Properties:
      Cluster: !Ref Cluster
      Service: !Ref Service
      TaskDefinition: !Ref Definition
      ExternalId: stack
      LaunchType: EC2
      Scale: {Unit: PERCENT, Value: !Ref Scale}
      LoadBalancers: [{TargetGroupArn: !Ref Blue, ContainerName: web, ContainerPort: 80}]
  Primary:
    Type: AWS::ECS::PrimaryTaskSet
    Properties:
      Cluster: !Ref Cluster
      Service: !Ref Service
      TaskSetId: !GetAtt TaskSet.Id
Outputs:
  ServiceName: {Value: !GetAtt Service.Name}
  ClusterArn: {Value: !GetAtt Cluster.Arn}
  TaskSetId: {Value: !Ref TaskSet}
"""
)
# A target group no listener forwards to, and a task set on it.
UNROUTED = """\
  Lonely:
    Type: AWS::ElasticLoadBalancingV2::TargetGroup
    Properties: {Port: 80, Protocol: HTTP, VpcId: vpc-1, TargetType: ip}
  Service:
    Type: AWS::ECS::Service
    Properties: {Cluster: !Ref Cluster, DeploymentController: {Type: EXTERNAL}}
  TaskSet:
    Type: AWS::ECS::TaskSet
    Properties:
      Cluster: !Ref Cluster
      Service: !Ref Service
      TaskDefinition: !Ref Definition
      LoadBalancers: [{TargetGroupArn: !Ref Lonely, ContainerName: web, ContainerPort: 80}]
"""
PLAIN = (
    BASE
    + """\
  Service:
    Type: AWS::ECS::Service
    Properties:
      Cluster: !Ref Cluster
      TaskDefinition: !Ref Definition
      DesiredCount: !Ref Count
"""
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from embedded_ecs_server(
        tmp_path_factory.mktemp("stacks-ecs") / "server", minute_seconds=TIME_SCALE_MINUTE
    )


def _values(**values: str) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _resources(cfn: Any, stack: str) -> dict[str, str]:
    found = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in found}


def _update(cfn: Any, stack: str, expected: str = "UPDATE_COMPLETE", **values: str) -> None:
    keys = ("Version", "Broken", "Count", "Port", "Scale")
    previous = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]
    kept = [
        {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
        for p in previous
        if p["ParameterKey"] in keys and p["ParameterKey"] not in values
    ]
    cfn.update_stack(StackName=stack, UsePreviousTemplate=True, Parameters=kept + _values(**values))
    status = settled(cfn, stack, SETTLE)["StackStatus"]
    assert status == expected, events(cfn, stack)


def _task_sets(ecs: Any, cluster: str, service: str) -> list[dict[str, Any]]:
    return list(ecs.describe_task_sets(cluster=cluster, service=service)["taskSets"])


def _answers(url: str, version: str) -> bool:
    """Every one of a few requests answered by a task of ``version``."""
    found = [fetch(url) for _ in range(4)]
    return all(
        status == 200 and body.strip().endswith(f"version {version}") for status, body in found
    )


def test_an_external_service_with_a_task_set_behind_a_listener(server: LiveServer) -> None:
    cfn, ecs, elbv2 = (server.client(s) for s in ("cloudformation", "ecs", "elbv2"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cfn.create_stack(StackName="shop", TemplateBody=EXTERNAL, Parameters=_values(Port=str(port)))
    stack = settled(cfn, "shop", SETTLE)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events(cfn, "shop")
    first = _resources(cfn, "shop")
    cluster, service = first["Cluster"], outputs(stack)["ServiceName"]
    assert outputs(stack)["ClusterArn"].endswith(f":cluster/{cluster}")
    assert first["Definition"].endswith(":1") and ":task-definition/" in first["Definition"]
    assert first["Service"].endswith(f":service/{cluster}/{service}")
    assert first["TaskSet"] == outputs(stack)["TaskSetId"]
    waited = f"Task set {first['TaskSet']} created; waiting for its tasks"
    assert ("TaskSet", "CREATE_IN_PROGRESS", waited) in events(cfn, "shop")
    (task_set,) = _task_sets(ecs, cluster, service)
    assert task_set["id"] == first["TaskSet"]
    assert (task_set["status"], task_set["externalId"]) == ("PRIMARY", "stack")
    # The task set was steady when its resource completed, so requests answer at once.
    assert (task_set["stabilityStatus"], task_set["runningCount"]) == ("STEADY_STATE", 2)
    assert wait_until(lambda: _answers(url, "1"), "version 1 behind the listener", 30)

    # Scale and desired count change in place: nothing is replaced.
    _update(cfn, "shop", Scale="50", Count="4")
    assert _resources(cfn, "shop") == first
    (task_set,) = _task_sets(ecs, cluster, service)
    assert task_set["scale"] == {"value": 50.0, "unit": "PERCENT"}
    assert (task_set["computedDesiredCount"], task_set["runningCount"]) == (2, 2)

    # A new task definition replaces the task set; the new one is made primary and
    # the old one and the old revision are gone once the update is cleaned up.
    _update(cfn, "shop", Version="2")
    second = _resources(cfn, "shop")
    assert second["Definition"].endswith(":2") and second["TaskSet"] != first["TaskSet"]
    assert (second["Service"], second["Primary"]) == (first["Service"], first["Primary"])
    (task_set,) = _task_sets(ecs, cluster, service)
    assert (task_set["id"], task_set["status"]) == (second["TaskSet"], "PRIMARY")
    old = ecs.describe_task_definition(taskDefinition=first["Definition"])["taskDefinition"]
    assert old["status"] == "INACTIVE"
    assert wait_until(lambda: _answers(url, "2"), "version 2 behind the listener", 30)

    # A task set whose tasks exit fails with ECS's reason; the update rolls back.
    _update(cfn, "shop", "UPDATE_ROLLBACK_COMPLETE", Version="3", Broken="yes")
    reasons = [
        r
        for logical, status, r in events(cfn, "shop")
        if (logical, status) == ("TaskSet", "UPDATE_FAILED")
    ]
    assert reasons and "tasks failed; the last:" in reasons[-1], events(cfn, "shop")
    assert "exited with code 3" in reasons[-1]
    assert _resources(cfn, "shop") == second
    (task_set,) = _task_sets(ecs, cluster, service)
    assert task_set["id"] == second["TaskSet"]
    assert _answers(url, "2")

    cfn.delete_stack(StackName="shop")
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack["StackId"], WaiterConfig={"Delay": 0.5, "MaxAttempts": int(SETTLE * 2)}
    )
    (gone,) = ecs.describe_clusters(clusters=[cluster])["clusters"]
    assert gone["status"] == "INACTIVE"
    family = first["Definition"].split("/")[-1].split(":")[0]
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert elbv2.describe_target_groups()["TargetGroups"] == []


def test_an_ecs_controller_service_rolls_onto_a_new_task_definition(server: LiveServer) -> None:
    cfn, ecs = server.client("cloudformation"), server.client("ecs")
    cfn.create_stack(StackName="plain", TemplateBody=PLAIN)
    stack = settled(cfn, "plain", SETTLE)
    assert stack["StackStatus"] == "CREATE_COMPLETE", events(cfn, "plain")
    first = _resources(cfn, "plain")
    (service,) = ecs.describe_services(cluster=first["Cluster"], services=[first["Service"]])[
        "services"
    ]
    assert service["taskDefinition"] == first["Definition"]
    (deployment,) = service["deployments"]
    assert (deployment["rolloutState"], deployment["runningCount"]) == ("COMPLETED", 2)

    _update(cfn, "plain", Version="2", Count="1")
    second = _resources(cfn, "plain")
    assert second["Service"] == first["Service"] and second["Definition"] != first["Definition"]
    (service,) = ecs.describe_services(cluster=first["Cluster"], services=[first["Service"]])[
        "services"
    ]
    assert service["taskDefinition"] == second["Definition"]
    primary = [d for d in service["deployments"] if d["status"] == "PRIMARY"]
    assert [(d["rolloutState"], d["runningCount"]) for d in primary] == [("COMPLETED", 1)]

    # A deployment whose tasks exit fails the service's update; the rollback puts the
    # service back on the task definition it ran.
    _update(cfn, "plain", "UPDATE_ROLLBACK_COMPLETE", Version="3", Broken="yes")
    failed = [r for logical, status, r in events(cfn, "plain") if status == "UPDATE_FAILED"]
    assert failed and "exited with code 3" in failed[-1], events(cfn, "plain")
    assert _resources(cfn, "plain") == second
    (service,) = ecs.describe_services(cluster=first["Cluster"], services=[first["Service"]])[
        "services"
    ]
    assert service["taskDefinition"] == second["Definition"]

    cfn.delete_stack(StackName="plain")
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack["StackId"], WaiterConfig={"Delay": 0.5, "MaxAttempts": int(SETTLE * 2)}
    )
    (gone,) = ecs.describe_clusters(clusters=[first["Cluster"]])["clusters"]
    assert gone["status"] == "INACTIVE"  # so its service was gone first


@pytest.mark.parametrize(
    ("name", "service", "reason"),
    [
        (
            "bad-value",
            "DeploymentController: {Type: BLUE_GREEN}",
            "InvalidParameterException: deploymentController.type must be one of ECS, "
            "CODE_DEPLOY, EXTERNAL",
        ),
        (
            "bad-property",
            "Colour: blue",
            "Properties validation failed for resource Service with message: "
            "#: extraneous key [Colour] is not permitted",
        ),
    ],
)
def test_bad_input_fails_the_resource_and_leaves_nothing(
    server: LiveServer, name: str, service: str, reason: str
) -> None:
    cfn, ecs = server.client("cloudformation"), server.client("ecs")
    body = PLAIN.replace(
        "      DesiredCount: !Ref Count\n", f"      DesiredCount: 0\n      {service}\n"
    )
    cfn.create_stack(StackName=name, TemplateBody=body)
    stack = settled(cfn, name, SETTLE)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE", events(cfn, name)
    failed = [(logical, r) for logical, status, r in events(cfn, name) if status == "CREATE_FAILED"]
    assert failed[0][0] == "Service" and reason in failed[0][1], failed
    deleted = [logical for logical, status, _ in events(cfn, name) if status == "DELETE_COMPLETE"]
    assert deleted == ["Service", "Definition", "Cluster"]  # newest first
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"] or ["none"])
    assert not [c for c in clusters["clusters"] if c["clusterName"].startswith(name)]
    active = ecs.list_task_definitions()["taskDefinitionArns"]
    assert not [arn for arn in active if f"/{name}-Definition:" in arn]


def test_a_service_whose_tasks_fail_is_rolled_back(server: LiveServer) -> None:
    cfn, ecs = server.client("cloudformation"), server.client("ecs")
    cfn.create_stack(StackName="crashing", TemplateBody=PLAIN, Parameters=_values(Broken="yes"))
    stack = settled(cfn, "crashing", SETTLE)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE", events(cfn, "crashing")
    failed = [
        (logical, r) for logical, status, r in events(cfn, "crashing") if status == "CREATE_FAILED"
    ]
    assert failed[0][0] == "Service", failed
    assert re.search(r"did not stabilize: \d+ tasks failed; the last: ", failed[0][1])
    assert "exited with code 3" in failed[0][1]
    deleted = [
        logical for logical, status, _ in events(cfn, "crashing") if status == "DELETE_COMPLETE"
    ]
    assert deleted == ["Service", "Definition", "Cluster"]
    # The cluster could be deleted: its failed service had drained and gone first.
    assert not [c for c in ecs.list_clusters()["clusterArns"] if "/crashing-" in c]


def test_a_task_set_on_a_target_group_no_listener_uses_is_refused(server: LiveServer) -> None:
    cfn = server.client("cloudformation")
    body = BASE + UNROUTED
    cfn.create_stack(StackName="unrouted", TemplateBody=body)
    stack = settled(cfn, "unrouted", SETTLE)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE", events(cfn, "unrouted")
    failed = [
        (logical, r) for logical, status, r in events(cfn, "unrouted") if status == "CREATE_FAILED"
    ]
    assert failed[0][0] == "TaskSet", failed
    assert "InvalidParameterException: The target group with targetGroupArn" in failed[0][1]
    assert "does not have an associated load balancer" in failed[0][1]


def test_validate_template_knows_the_ecs_attributes(server: LiveServer) -> None:
    cfn = server.client("cloudformation")
    good = PLAIN + "Outputs:\n  Name: {Value: !GetAtt Service.Name}\n"
    assert [p["ParameterKey"] for p in cfn.validate_template(TemplateBody=good)["Parameters"]]
    bad = PLAIN + "Outputs:\n  Arn: {Value: !GetAtt Service.Arn}\n"
    with pytest.raises(ClientError, match="resource Service does not support attribute type Arn"):
        cfn.validate_template(TemplateBody=bad)


def test_a_code_deploy_service_takes_a_new_task_definition_only_from_codedeploy(
    server: LiveServer,
) -> None:
    cfn, ecs = server.client("cloudformation"), server.client("ecs")
    body = PLAIN.replace(
        "      DesiredCount: !Ref Count\n",
        "      DesiredCount: !Ref Count\n      DeploymentController: {Type: CODE_DEPLOY}\n",
    )
    cfn.create_stack(StackName="coded", TemplateBody=body)
    assert settled(cfn, "coded", SETTLE)["StackStatus"] == "CREATE_COMPLETE", events(cfn, "coded")
    first = _resources(cfn, "coded")
    (task_set,) = _task_sets(ecs, first["Cluster"], first["Service"])
    assert (task_set["status"], task_set["stabilityStatus"]) == ("PRIMARY", "STEADY_STATE")
    assert task_set["runningCount"] == 2

    _update(cfn, "coded", "UPDATE_ROLLBACK_COMPLETE", Version="2")
    failed = [r for logical, status, r in events(cfn, "coded") if status == "UPDATE_FAILED"]
    assert "UpdateService" in failed[-1] and "Use AWS CodeDeploy" in failed[-1], failed
    assert _resources(cfn, "coded") == first
