"""An ECS service behind a load balancer for deployment tests, built through boto3 on
any implementation of the ECS and ELBv2 APIs (moto's server here; the embedded
container service too): a cluster, two task definition revisions, two target groups,
a production and a test listener forwarding to the first group, and a CODE_DEPLOY
service whose primary task set serves from it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import docker
from botocore.exceptions import BotoCoreError

from shipyard.containers.ecs.images import busybox_httpd
from shipyard.containers.ecs.podman_service import PodmanService
from tests.conftest import LiveServer, free_port, service_missing, start_live_server
from tests.containers.conftest import require_podman, teardown
from tests.e2e.test_server_crash import ServerProcess
from tests.support import wait_until

ROLE_ARN = "arn:aws:iam::123456789012:role/CodeDeployECS"


def moto_settings(url: str) -> dict[str, Any]:
    """ServerConfig settings for ECS deployments on moto's server at ``url``."""
    return {
        "containers_backend": "aws",
        "containers_endpoint": url,
        "containers_region": "us-east-1",
        "containers_poll_seconds": 0.05,
    }


@dataclass(frozen=True)
class Stack:
    cluster: str
    service: str
    task_definitions: tuple[str, ...]  # ARNs: revision 1 serves first
    target_groups: tuple[str, str]  # names
    target_group_arns: tuple[str, str]
    prod_listener: str
    test_listener: str


def task_definition(
    ecs: Any, family: str, image: str, port: int = 80, network_mode: str = "awsvpc"
) -> str:
    answer = ecs.register_task_definition(
        family=family,
        networkMode=network_mode,
        requiresCompatibilities=["FARGATE" if network_mode == "awsvpc" else "EC2"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "web",
                "image": image,
                "essential": True,
                "cpu": 256,
                "memory": 512,
                "portMappings": [{"containerPort": port, "protocol": "tcp"}],
            }
        ],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def build_stack(
    ecs: Any, elbv2: Any, ec2: Any, name: str, desired: int = 3, network_mode: str = "awsvpc"
) -> Stack:
    """``network_mode`` bridge for moto, which cannot run awsvpc tasks of a task set."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    balancer = elbv2.create_load_balancer(Name=f"{name}-lb", Subnets=subnets)["LoadBalancers"][0]
    groups = tuple(f"{name}-{color}" for color in ("blue", "green"))
    arns = tuple(
        elbv2.create_target_group(Name=group, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for group in groups
    )
    forward = [{"Type": "forward", "TargetGroupArn": arns[0]}]
    listeners = [
        elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=port,
            DefaultActions=forward,
        )["Listeners"][0]["ListenerArn"]
        for port in (80, 8080)
    ]
    cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterName"]
    first = task_definition(ecs, name, "web:1", network_mode=network_mode)
    second = task_definition(ecs, name, "web:2", network_mode=network_mode)
    group = ec2.create_security_group(GroupName=f"{name}-tasks", Description="tasks", VpcId=vpc)
    vpc_config = {"subnets": subnets, "securityGroups": [group["GroupId"]]}
    network = {"awsvpcConfiguration": {**vpc_config, "assignPublicIp": "DISABLED"}}
    ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=first,
        desiredCount=desired,
        launchType="FARGATE" if network_mode == "awsvpc" else "EC2",
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": arns[0], "containerName": "web", "containerPort": 80}],
        **({"networkConfiguration": network} if network_mode == "awsvpc" else {}),
    )
    return Stack(
        cluster, "web", (first, second), (groups[0], groups[1]), (arns[0], arns[1]), *listeners
    )


def moto_capacity(ecs: Any, ec2: Any, cluster: str) -> None:
    """moto places the tasks of a task set only on registered container instances."""
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.4xlarge"
    )["Instances"]
    document = {
        "availabilityZone": "us-east-1a",
        "privateIp": instance["PrivateIpAddress"],
        "region": "us-east-1",
        "instanceId": instance["InstanceId"],
        "instanceType": "m5.4xlarge",
        "imageId": image,
    }
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(document))


def ensure_primary_task_set(ecs: Any, stack: Stack) -> None:
    """moto does not create a CODE_DEPLOY service's first task set (AWS does): make it."""
    sets = ecs.describe_task_sets(cluster=stack.cluster, service=stack.service)["taskSets"]
    if any(s["status"] == "PRIMARY" for s in sets):
        return
    (service,) = ecs.describe_services(cluster=stack.cluster, services=[stack.service])["services"]
    created = ecs.create_task_set(
        cluster=stack.cluster,
        service=stack.service,
        taskDefinition=stack.task_definitions[0],
        launchType=service.get("launchType", "FARGATE"),
        **{k: v for k, v in service.items() if k == "networkConfiguration"},
        loadBalancers=[
            {
                "targetGroupArn": stack.target_group_arns[0],
                "containerName": "web",
                "containerPort": 80,
            }
        ],
        scale={"value": 100.0, "unit": "PERCENT"},
    )["taskSet"]
    ecs.update_service_primary_task_set(
        cluster=stack.cluster, service=stack.service, primaryTaskSet=created["taskSetArn"]
    )


def group_members(stack: Stack, **extra: Any) -> dict[str, Any]:
    """CreateDeploymentGroup members for the stack's service (no names)."""
    return {
        "serviceRoleArn": ROLE_ARN,
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "ecsServices": [{"clusterName": stack.cluster, "serviceName": stack.service}],
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": g} for g in stack.target_groups],
                    "prodTrafficRoute": {"listenerArns": [stack.prod_listener]},
                    "testTrafficRoute": {"listenerArns": [stack.test_listener]},
                }
            ]
        },
        "blueGreenDeploymentConfiguration": {
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 0,
            },
        },
        **extra,
    }


def appspec(task_definition: str, container: str = "web", port: int = 80, hooks: str = "") -> str:
    text = (
        "version: 0.0\n"
        "Resources:\n"
        "  - TargetService:\n"
        "      Type: AWS::ECS::Service\n"
        "      Properties:\n"
        f"        TaskDefinition: {task_definition}\n"
        "        LoadBalancerInfo:\n"
        f"          ContainerName: {container}\n"
        f"          ContainerPort: {port}\n"
    )
    return text + hooks


def revision(content: str) -> dict[str, Any]:
    return {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}


def weights(elbv2: Any, listener: str) -> dict[str, int]:
    """Target group ARN -> weight of the listener's forward action now."""
    (found,) = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"]
    action = found["DefaultActions"][0]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    return {action["TargetGroupArn"]: 100}


class EcsClients:
    """ECS and ELBv2 clients of one implementation, and what tests read through them."""

    def __init__(self, ecs: Any, elbv2: Any) -> None:
        self.ecs = ecs
        self.elbv2 = elbv2

    def task_sets(self, stack: Stack) -> list[dict[str, Any]]:
        found = self.ecs.describe_task_sets(cluster=stack.cluster, service=stack.service)
        return [s for s in found["taskSets"] if s.get("status") != "DRAINING"]

    def wait_healthy(self, stack: Stack, count: int, index: int = 0) -> None:
        def healthy() -> bool:
            found = self.elbv2.describe_target_health(
                TargetGroupArn=stack.target_group_arns[index]
            )["TargetHealthDescriptions"]
            return sum(t["TargetHealth"]["State"] == "healthy" for t in found) == count

        wait_until(healthy, f"{count} healthy targets in {stack.target_groups[index]}", 90)


class MotoEcs(EcsClients):
    """Clients of moto's ECS, ELBv2 and EC2, and stacks built there."""

    def __init__(self, url: str) -> None:
        options = {
            "endpoint_url": url,
            "region_name": "us-east-1",
            "aws_access_key_id": "moto",
            "aws_secret_access_key": "moto",
        }
        super().__init__(boto3.client("ecs", **options), boto3.client("elbv2", **options))
        self.ec2 = boto3.client("ec2", **options)

    def stack(self, name: str) -> Stack:
        stack = build_stack(self.ecs, self.elbv2, self.ec2, name, network_mode="bridge")
        moto_capacity(self.ecs, self.ec2, stack.cluster)
        ensure_primary_task_set(self.ecs, stack)
        return stack


def embedded_stack(ecs: Any, elbv2: Any, name: str, image: str, desired: int = 3) -> Stack:
    """The same stack on the embedded container service: the image's httpd answers
    "task <id> version <VERSION>" on port 80, and task definition revision N sets
    VERSION=N (three revisions); listeners on free loopback ports."""
    balancer = elbv2.create_load_balancer(Name=f"{name}-lb")["LoadBalancers"][0]
    groups = tuple(f"{name}-{color}" for color in ("blue", "green"))
    arns = tuple(
        elbv2.create_target_group(
            Name=group,
            Protocol="HTTP",
            Port=80,
            TargetType="ip",
            HealthCheckPath="/",
            HealthCheckIntervalSeconds=5,
            HealthCheckTimeoutSeconds=2,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
        )["TargetGroups"][0]["TargetGroupArn"]
        for group in groups
    )
    forward = [{"Type": "forward", "TargetGroupArn": arns[0]}]
    listeners = [
        elbv2.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="HTTP",
            Port=free_port(),
            DefaultActions=forward,
        )["Listeners"][0]["ListenerArn"]
        for _ in range(2)
    ]
    cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterName"]
    definitions = tuple(
        ecs.register_task_definition(
            family=name,
            containerDefinitions=[
                {
                    "name": "web",
                    "image": image,
                    "essential": True,
                    "memory": 64,
                    "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
                    "environment": [{"name": "VERSION", "value": str(version)}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        for version in (1, 2, 3)
    )
    ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=definitions[0],
        desiredCount=desired,
        deploymentController={"type": "CODE_DEPLOY"},
        loadBalancers=[{"targetGroupArn": arns[0], "containerName": "web", "containerPort": 80}],
    )
    return Stack(
        cluster, "web", definitions, (groups[0], groups[1]), (arns[0], arns[1]), *listeners
    )


def listener_port(elbv2: Any, listener: str) -> int:
    (found,) = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"]
    return int(found["Port"])


def embedded_ecs_server(data_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    """A live server whose embedded container service runs real Podman containers
    behind HAProxy load balancers, with the busybox httpd image built; quick to
    reconcile and poll unless ``settings`` say otherwise."""
    require_podman()
    running = start_live_server(
        data_dir, **{"ecs_reconcile_seconds": 0.2, "containers_poll_seconds": 0.2, **settings}
    )
    live = next(running)
    try:
        if live.services.load_balancers is None:
            service_missing("haproxy (the embedded ELBv2)")
        assert live.services.ecs is not None
        busybox_httpd(live.services.ecs.capacity.client(0))
        yield live
    finally:
        next(running, None)
        teardown(live)


class WeightLog:
    """A listener's forward weights each time they changed, sampled every 20 ms until
    ``stop``; while the server is down (killed on purpose) the last ones stand."""

    def __init__(self, elbv2: Any, listener: str) -> None:
        self.changes: list[tuple[float, dict[str, int]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(elbv2, listener), daemon=True)
        self._thread.start()

    def _watch(self, elbv2: Any, listener: str) -> None:
        while not self._done.is_set():
            try:
                now = weights(elbv2, listener)
            except BotoCoreError:
                now = self.changes[-1][1] if self.changes else {}
            if not self.changes or self.changes[-1][1] != now:
                self.changes.append((time.time(), now))
            time.sleep(0.02)

    def stop(self) -> list[tuple[float, dict[str, int]]]:
        self._done.set()
        self._thread.join(5)
        return self.changes


@contextlib.contextmanager
def killable_ecs_server(data_dir: Path, **settings: str) -> Iterator[ServerProcess]:
    """A real server process (for kill -9) on the embedded container service, the
    busybox httpd image built in its Podman store first, whose load balancers serve on
    through a kill; ``settings``: more SHIPYARD_* environment. Everything it started,
    HAProxy daemons included, is stopped at the end."""
    require_podman()
    podman = PodmanService(data_dir / "ecs")  # the store the server's own service uses
    podman.ensure_started()
    try:
        busybox_httpd(docker.DockerClient(base_url=podman.address))
    finally:
        podman.stop()
    environment = {
        "SHIPYARD_ECS_RECONCILE_SECONDS": "0.2",
        "SHIPYARD_CONTAINERS_POLL_SECONDS": "0.2",
        "SHIPYARD_ELB_KEEP_RUNNING": "true",  # load balancers serve on through the kill
        **settings,
    }
    server = ServerProcess(data_dir, "", env=environment)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        PodmanService(data_dir / "ecs").teardown()
        # Its load balancers were kept running through the kill, and so past the stop.
        for pid_file in (data_dir / "elb").glob("*/pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
