"""ECS deployments on the AWS path: the server's containers_backend "aws" pointed at
moto's server, a second, independent implementation of the ECS and ELBv2 APIs, on
loopback. A CODE_DEPLOY service behind a load balancer is built there
(tests/ecs_support.py); a canary creates the replacement task set (externalId = the
deployment id), moves the production listener's weights on schedule (observed with
DescribeListeners while it runs), makes the replacement primary and deletes the
original. Stops, waits and bad input are checked on the same service. moto cannot run
functions, so these deployments have no hooks; its task sets report no task counts
and it does not create a CODE_DEPLOY service's first task set (the test does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server
from tests.ecs_support import (
    MotoEcs,
    Stack,
    appspec,
    group_members,
    moto_settings,
    revision,
    task_definition,
    weights,
)
from tests.moto_support import moto_endpoint
from tests.server.crud_support import aws_cli
from tests.support import call_extension, raw_call, wait_until

APP = "shop"
MINUTE = 0.4


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    yield from moto_endpoint()


@pytest.fixture(scope="module")
def aws(moto_url: str) -> MotoEcs:
    return MotoEcs(moto_url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[LiveServer]:
    yield from start_live_server(
        tmp_path_factory.mktemp("ecs-moto") / "server",
        minute_seconds=MINUTE,
        **moto_settings(moto_url),
    )


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="ECS")
    return client


def _group(cd: Any, stack: Stack, config: str, **extra: Any) -> str:
    cd.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=stack.cluster,
        deploymentConfigName=config,
        **group_members(stack, **extra),
    )
    return stack.cluster


def _deploy(cd: Any, group: str, content: str) -> str:
    answer = cd.create_deployment(
        applicationName=APP, deploymentGroupName=group, revision=revision(content)
    )
    return str(answer["deploymentId"])


def _status(cd: Any, deployment_id: str) -> str:
    return str(cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"])


def _target(cd: Any, deployment_id: str, stack: Stack) -> dict[str, Any]:
    answer = cd.get_deployment_target(
        deploymentId=deployment_id, targetId=f"{stack.cluster}:{stack.service}"
    )
    return dict(answer["deploymentTarget"]["ecsTarget"])


def test_a_canary_replaces_the_task_set_and_moves_the_listener_on_schedule(
    cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("canary")
    group = _group(cd, stack, "CodeDeployDefault.ECSCanary10Percent5Minutes")
    blue, green = stack.target_group_arns
    (original,) = aws.task_sets(stack)

    deployment_id = _deploy(cd, group, appspec(stack.task_definitions[1]))

    # The canary's 10 % holds for 5 scaled minutes (2 s): DescribeListeners shows it.
    wait_until(
        lambda: weights(aws.elbv2, stack.prod_listener) == {blue: 90, green: 10},
        "the 10 % canary on moto's listener",
    )
    assert weights(aws.elbv2, stack.test_listener) == {blue: 0, green: 100}
    replacement = next(s for s in aws.task_sets(stack) if s["externalId"] == deployment_id)
    assert replacement["taskDefinition"] == stack.task_definitions[1]
    assert replacement["loadBalancers"][0]["targetGroupArn"] == green
    assert replacement["status"] == "ACTIVE"
    during = _target(cd, deployment_id, stack)
    shown = {s["taskSetLabel"]: s for s in during["taskSetsInfo"]}
    assert (shown["BLUE"]["trafficWeight"], shown["GREEN"]["trafficWeight"]) == (90.0, 10.0)
    assert shown["BLUE"]["identifer"] == original["id"]
    assert shown["GREEN"]["targetGroup"] == {"name": stack.target_groups[1]}
    assert (shown["BLUE"]["status"], shown["GREEN"]["status"]) == ("PRIMARY", "ACTIVE")

    wait_until(lambda: _status(cd, deployment_id) == "Succeeded", "the canary to succeed")
    assert weights(aws.elbv2, stack.prod_listener) == {blue: 0, green: 100}
    (left,) = aws.task_sets(stack)
    assert (left["externalId"], left["status"]) == (deployment_id, "PRIMARY")
    (service,) = aws.ecs.describe_services(cluster=stack.cluster, services=["web"])["services"]
    assert service["taskDefinition"] == stack.task_definitions[1]
    target = _target(cd, deployment_id, stack)
    assert target["status"] == "Succeeded"
    assert target["targetArn"].endswith(f":service/{stack.cluster}/{stack.service}")
    assert [(e["lifecycleEventName"], e["status"]) for e in target["lifecycleEvents"]] == [
        (name, "Succeeded")
        for name in (
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "AllowTestTraffic",
            "AfterAllowTestTraffic",
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic",
        )
    ]
    (after,) = target["taskSetsInfo"]
    assert (after["taskSetLabel"], after["trafficWeight"], after["status"]) == (
        "GREEN",
        100.0,
        "PRIMARY",
    )
    ids = f"{stack.cluster}:{stack.service}"
    listed = cd.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert listed == [ids]
    succeeded = {"TargetStatus": ["Succeeded"]}
    failed = {"TargetStatus": ["Failed"]}
    assert cd.list_deployment_targets(deploymentId=deployment_id, targetFilters=succeeded)[
        "targetIds"
    ] == [ids]
    assert (
        cd.list_deployment_targets(deploymentId=deployment_id, targetFilters=failed)["targetIds"]
        == []
    )
    (batch,) = cd.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=[ids])[
        "deploymentTargets"
    ]
    assert batch["deploymentTargetType"] == "ECSTarget"
    info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["computePlatform"] == "ECS"
    assert "ecsAppSpec" not in info and "ecsTarget" not in info


def test_a_linear_shift_passes_through_each_step(cd: Any, aws: MotoEcs) -> None:
    stack = aws.stack("linear")
    group = _group(cd, stack, "CodeDeployDefault.ECSLinear10PercentEvery1Minutes")
    green = stack.target_group_arns[1]
    deployment_id = _deploy(cd, group, appspec(stack.task_definitions[1]))
    seen: set[int] = set()

    def done() -> bool:
        seen.add(weights(aws.elbv2, stack.prod_listener).get(green, 0))
        return _status(cd, deployment_id) == "Succeeded"

    wait_until(done, "the linear shift to succeed", every=0.02)

    assert 100 in seen
    assert len(seen & {10, 20, 30, 40, 50, 60, 70, 80, 90}) >= 5, seen


def test_a_stop_mid_shift_puts_both_routes_back_and_deletes_the_replacement(
    cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("stopped")
    group = _group(cd, stack, "CodeDeployDefault.ECSCanary10Percent15Minutes")
    blue, green = stack.target_group_arns
    (original,) = aws.task_sets(stack)
    deployment_id = _deploy(cd, group, appspec(stack.task_definitions[1]))
    wait_until(lambda: weights(aws.elbv2, stack.prod_listener).get(green) == 10, "the 10 % canary")

    cd.stop_deployment(deploymentId=deployment_id)

    wait_until(lambda: len(aws.task_sets(stack)) == 1, "the replacement to be deleted")
    wait_until(lambda: _status(cd, deployment_id) == "Stopped", "the deployment to stop")
    assert weights(aws.elbv2, stack.prod_listener) == {blue: 100, green: 0}
    assert weights(aws.elbv2, stack.test_listener) == {blue: 100, green: 0}
    (left,) = aws.task_sets(stack)
    assert (left["id"], left["status"]) == (original["id"], "PRIMARY")
    (service,) = aws.ecs.describe_services(cluster=stack.cluster, services=["web"])["services"]
    assert service["taskDefinition"] == stack.task_definitions[0]


def test_the_termination_wait_holds_the_original_until_continued(cd: Any, aws: MotoEcs) -> None:
    stack = aws.stack("waits")
    options = {
        "deploymentReadyOption": {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60},
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 60,
        },
    }
    group = _group(
        cd, stack, "CodeDeployDefault.ECSAllAtOnce", blueGreenDeploymentConfiguration=options
    )
    blue, green = stack.target_group_arns
    deployment_id = _deploy(cd, group, appspec(stack.task_definitions[1]))

    # Ready: the replacement takes test traffic, production waits for a continue.
    wait_until(lambda: _status(cd, deployment_id) == "Ready", "the ready wait")
    assert weights(aws.elbv2, stack.test_listener) == {blue: 0, green: 100}
    assert weights(aws.elbv2, stack.prod_listener) == {blue: 100, green: 0}
    cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")

    # The termination wait: production on the replacement, the original still there.
    def waiting() -> bool:
        info = cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return bool(info.get("instanceTerminationWaitTimeStarted"))

    wait_until(waiting, "the termination wait")
    assert weights(aws.elbv2, stack.prod_listener) == {blue: 0, green: 100}
    assert len(aws.task_sets(stack)) == 2
    assert _status(cd, deployment_id) == "InProgress"
    cd.continue_deployment(deploymentId=deployment_id, deploymentWaitType="TERMINATION_WAIT")

    wait_until(lambda: _status(cd, deployment_id) == "Succeeded", "the retirement")
    (left,) = aws.task_sets(stack)
    assert (left["externalId"], left["status"]) == (deployment_id, "PRIMARY")


def test_a_stop_in_the_termination_wait_keeps_the_new_version_serving(
    cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("keeps")
    options = {
        "terminateBlueInstancesOnDeploymentSuccess": {
            "action": "TERMINATE",
            "terminationWaitTimeInMinutes": 60,
        },
    }
    group = _group(
        cd, stack, "CodeDeployDefault.ECSAllAtOnce", blueGreenDeploymentConfiguration=options
    )
    green = stack.target_group_arns[1]
    deployment_id = _deploy(cd, group, appspec(stack.task_definitions[1]))
    wait_until(
        lambda: cd.get_deployment(deploymentId=deployment_id)["deploymentInfo"].get(
            "instanceTerminationWaitTimeStarted"
        ),
        "the termination wait",
    )

    cd.stop_deployment(deploymentId=deployment_id)

    wait_until(lambda: len(aws.task_sets(stack)) == 1, "the original to be retired")
    assert _status(cd, deployment_id) == "Stopped"
    assert weights(aws.elbv2, stack.prod_listener)[green] == 100
    (left,) = aws.task_sets(stack)
    assert (left["externalId"], left["status"]) == (deployment_id, "PRIMARY")


def test_a_second_deployment_replaces_the_first_ones_task_set(cd: Any, aws: MotoEcs) -> None:
    """The next deployment's replacement goes on the target group the last one freed."""
    stack = aws.stack("twice")
    group = _group(cd, stack, "CodeDeployDefault.ECSAllAtOnce")
    blue, green = stack.target_group_arns
    first = _deploy(cd, group, appspec(stack.task_definitions[1]))
    wait_until(lambda: _status(cd, first) == "Succeeded", "the first deployment")

    second = _deploy(cd, group, appspec(stack.task_definitions[0]))

    wait_until(lambda: _status(cd, second) == "Succeeded", "the second deployment")
    assert weights(aws.elbv2, stack.prod_listener) == {green: 0, blue: 100}
    (left,) = aws.task_sets(stack)
    assert left["externalId"] == second
    assert left["loadBalancers"][0]["targetGroupArn"] == blue


def test_a_bad_group_is_refused_with_codedeploys_errors(
    server: LiveServer, cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("refusals")
    aws.ecs.create_service(
        cluster=stack.cluster, serviceName="rolling", taskDefinition=stack.task_definitions[0]
    )
    pair = group_members(stack)["loadBalancerInfo"]["targetGroupPairInfoList"][0]
    unknown = {**pair, "targetGroups": [{"name": stack.target_groups[0]}, {"name": "gone"}]}
    cases = [
        ({"clusterName": "nowhere", "serviceName": "web"}, pair, "InvalidECSServiceException"),
        ({"clusterName": stack.cluster, "serviceName": "nope"}, pair, "InvalidECSServiceException"),
        # An ECS-controlled service: CodeDeploy cannot deploy it.
        (
            {"clusterName": stack.cluster, "serviceName": "rolling"},
            pair,
            "InvalidECSServiceException",
        ),
        (None, unknown, "InvalidTargetGroupPairException"),
    ]
    for index, (service, chosen, code) in enumerate(cases):
        members = group_members(stack)
        if service is not None:
            members["ecsServices"] = [service]
        members["loadBalancerInfo"] = {"targetGroupPairInfoList": [chosen]}
        body = {"applicationName": APP, "deploymentGroupName": f"bad-{index}", **members}
        status, answer = raw_call(server, "CreateDeploymentGroup", body)
        assert (status, answer["__type"]) == (400, code), (service, answer)

    # A listener that forwards to neither target group of the pair.
    (blue,) = aws.elbv2.describe_target_groups(Names=[stack.target_groups[0]])["TargetGroups"]
    elsewhere = aws.elbv2.create_target_group(
        Name="elsewhere", Protocol="HTTP", Port=80, VpcId=blue["VpcId"]
    )
    forward = {"Type": "forward", "TargetGroupArn": elsewhere["TargetGroups"][0]["TargetGroupArn"]}
    aws.elbv2.modify_listener(ListenerArn=stack.test_listener, DefaultActions=[forward])
    body = {"applicationName": APP, "deploymentGroupName": "bad-listener", **group_members(stack)}
    status, answer = raw_call(server, "CreateDeploymentGroup", body)
    assert (status, answer["__type"]) == (400, "InvalidTargetGroupPairException"), answer
    assert "does not forward to target group" in answer["message"]
    groups = cd.list_deployment_groups(applicationName=APP)["deploymentGroups"]
    assert not [name for name in groups if name.startswith("bad-")]


def test_a_service_belongs_to_one_deployment_group(
    server: LiveServer, cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("mapped")
    group = _group(cd, stack, "CodeDeployDefault.ECSAllAtOnce")
    assert cd.get_deployment_group(applicationName=APP, deploymentGroupName=group)[
        "deploymentGroupInfo"
    ]["ecsServices"] == [{"serviceName": "web", "clusterName": stack.cluster}]
    body = {"applicationName": APP, "deploymentGroupName": "again", **group_members(stack)}

    status, answer = raw_call(server, "CreateDeploymentGroup", body)

    assert (status, answer["__type"]) == (400, "ECSServiceMappingLimitExceededException")


@pytest.mark.parametrize(
    ("content", "code", "words"),
    [
        (appspec("{td}", container="api"), "InvalidRevision", "ContainerName 'api' is not"),
        (appspec("{td}", port=8080), "InvalidRevision", "ContainerPort 8080 is not"),
        (appspec("nothere:7"), "InvalidRevision", "TaskDefinition nothere:7 does not exist"),
        (
            appspec("{td}").replace("        TaskDefinition: {td}\n", ""),
            "InvalidRevision",
            "Properties needs TaskDefinition",
        ),
        (appspec("{td}", port=0), "InvalidRevision", "ContainerPort must be a port number"),
        (
            appspec("{td}") + "Hooks:\n  - BeforeBlockTraffic: fn\n",
            "InvalidRevision",
            "not an ECS lifecycle hook",
        ),
        ("version: 0.0\nResources: {}\n", "InvalidRevision", "exactly one resource"),
    ],
)
def test_a_bad_appspec_is_refused_and_nothing_is_stored(
    server: LiveServer, cd: Any, aws: MotoEcs, content: str, code: str, words: str
) -> None:
    stack = _checked_stack(cd, aws)
    content = content.replace("{td}", stack.task_definitions[1])
    body = {"applicationName": APP, "deploymentGroupName": "checks", "revision": revision(content)}

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, code + "Exception"), answer
    assert words in answer["message"]
    assert (
        cd.list_deployments(applicationName=APP, deploymentGroupName="checks")["deployments"] == []
    )
    assert len(aws.task_sets(stack)) == 1


def test_a_deployment_to_a_service_being_deployed_is_refused(
    server: LiveServer, cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("busy")
    ready = {"actionOnTimeout": "STOP_DEPLOYMENT", "waitTimeInMinutes": 60}
    options = {"deploymentReadyOption": ready}
    group = _group(
        cd, stack, "CodeDeployDefault.ECSAllAtOnce", blueGreenDeploymentConfiguration=options
    )
    running = _deploy(cd, group, appspec(stack.task_definitions[1]))
    wait_until(lambda: _status(cd, running) == "Ready", "the first deployment to wait")
    body = {
        "applicationName": APP,
        "deploymentGroupName": group,
        "revision": revision(appspec(stack.task_definitions[0])),
    }

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, "DeploymentLimitExceededException"), answer
    assert running in answer["message"]
    # A stop in Ready takes the replacement away: the service is as it was.
    cd.stop_deployment(deploymentId=running)
    wait_until(lambda: len(aws.task_sets(stack)) == 1, "the replacement to be deleted")
    assert _status(cd, running) == "Stopped"
    assert aws.task_sets(stack)[0]["externalId"] != running


_CHECKED: dict[str, Stack] = {}


def _checked_stack(cd: Any, aws: MotoEcs) -> Stack:
    if "checks" not in _CHECKED:
        stack = aws.stack("checks")
        _group(cd, stack, "CodeDeployDefault.ECSAllAtOnce")
        _CHECKED["checks"] = stack
    return _CHECKED["checks"]


def test_the_aws_cli_deploys_and_a_manual_rollback_goes_back_a_revision(
    server: LiveServer, cd: Any, aws: MotoEcs
) -> None:
    stack = aws.stack("cli")
    group = _group(cd, stack, "CodeDeployDefault.ECSAllAtOnce")
    third = task_definition(aws.ecs, stack.cluster, "web:3", network_mode="bridge")
    deployed = []
    for definition in (stack.task_definitions[1], third):
        created = aws_cli(
            server,
            "create-deployment",
            "--application-name",
            APP,
            "--deployment-group-name",
            group,
            "--revision",
            json.dumps(revision(appspec(definition))),
        )
        deployed.append(created["deploymentId"])
        wait_until(lambda: _status(cd, deployed[-1]) == "Succeeded", "the CLI's deployment")
    assert _service_definition(aws, stack) == third

    answer = call_extension(
        server, "ShipyardRollback", {"applicationName": APP, "deploymentGroupName": group}
    )

    rollback_id = answer["rollbackDeploymentId"]
    wait_until(lambda: _status(cd, rollback_id) == "Succeeded", "the rollback")
    assert _service_definition(aws, stack) == stack.task_definitions[1]
    info = cd.get_deployment(deploymentId=rollback_id)["deploymentInfo"]
    assert info["creator"] == "codeDeployRollback"
    (left,) = aws.task_sets(stack)
    assert left["externalId"] == rollback_id


def _service_definition(aws: MotoEcs, stack: Stack) -> str:
    (service,) = aws.ecs.describe_services(cluster=stack.cluster, services=[stack.service])[
        "services"
    ]
    return str(service["taskDefinition"])


def test_a_service_with_a_second_task_set_is_refused(
    server: LiveServer, cd: Any, aws: MotoEcs
) -> None:
    """Another deployment's replacement (or anything else) beside the primary task set:
    the service is being deployed, and nothing is created."""
    stack = aws.stack("doubled")
    group = _group(cd, stack, "CodeDeployDefault.ECSAllAtOnce")
    aws.ecs.create_task_set(
        cluster=stack.cluster,
        service=stack.service,
        taskDefinition=stack.task_definitions[1],
        externalId="elsewhere",
    )
    body = {
        "applicationName": APP,
        "deploymentGroupName": group,
        "revision": revision(appspec(stack.task_definitions[1])),
    }

    status, answer = raw_call(server, "CreateDeployment", body)

    assert (status, answer["__type"]) == (400, "InvalidECSServiceException"), answer
    assert "already being deployed" in answer["message"]
    assert len(aws.task_sets(stack)) == 2
    assert cd.list_deployments(applicationName=APP, deploymentGroupName=group)["deployments"] == []
