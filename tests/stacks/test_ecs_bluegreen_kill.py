"""kill -9 of the server while a stack update's green deployment shifts traffic (the
ECS blue/green example at its canary's 20 %): the load balancer and the tasks serve on,
and the restarted server waits for the same deployment again, which carries on to the
end; the stack ends UPDATE_COMPLETE on the green task set, nothing left half-applied,
and no request through the production listener failed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.http_load import summarize
from tests.ecs_support import WeightLog, killable_ecs_server
from tests.stacks.conftest import events, settled
from tests.stacks.test_ecs_bluegreen_e2e import TEMPLATE, page, parameters, production_load
from tests.support import wait_until

pytestmark = [
    pytest.mark.e2e,
    # Killing the server mid-request leaves text file objects behind in this test
    # process (as in tests/stacks/test_server_kill.py).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

MINUTE = 8.0  # the canary's 20 % lasts 8 s: time to kill the server in it


def _physical(cfn: Any, logical_id: str) -> str:
    found = cfn.describe_stack_resources(StackName="web", LogicalResourceId=logical_id)
    return str(found["StackResources"][0]["PhysicalResourceId"])


def test_a_kill_mid_canary_resumes_the_green_deployment(tmp_path: Path) -> None:
    with killable_ecs_server(
        tmp_path / "server", SHIPYARD_MINUTE_SECONDS=str(MINUTE), SHIPYARD_HOOK_TIMEOUT="150"
    ) as server:
        cfn = server.client("cloudformation")
        ports = {"ProdPort": free_port(), "TestPort": free_port()}
        body = TEMPLATE.read_text()
        cfn.create_stack(StackName="web", TemplateBody=body, Parameters=parameters(ports, "1"))
        assert settled(cfn, "web", 120)["StackStatus"] == "CREATE_COMPLETE"
        green_group = _physical(cfn, "GreenTargetGroup")
        watch = WeightLog(server.client("elbv2"), _physical(cfn, "ProductionListener"))
        load = production_load(tmp_path, ports["ProdPort"])
        try:
            cfn.update_stack(StackName="web", TemplateBody=body, Parameters=parameters(ports, "2"))
            wait_until(
                lambda: watch.changes and watch.changes[-1][1].get(green_group) == 20,
                lambda: f"the canary's 20 %: {watch.changes}",
                120,
            )
            server.kill()
            time.sleep(2.0)  # the load balancer and the tasks serve on, the server is gone
            server.start()
            cfn = server.client("cloudformation")
            stack = settled(cfn, "web", 120)
            ended = time.time()
            time.sleep(1.0)
        finally:
            changes = watch.stop()
            requests = load.stop()
        assert stack["StackStatus"] == "UPDATE_COMPLETE", events(cfn, "web")
        summary = summarize(requests)
        assert summary.failures == 0, summary
        shares = [w.get(green_group, 0) for _, w in changes]
        assert shares == sorted(shares), f"the share went back down: {shares}"
        assert 100 in shares, shares
        assert {r.body.split()[-1] for r in requests if r.started >= ended} == {"2"}
        assert page(ports["ProdPort"]).endswith("version 2\n")
        reasons = [reason for _, _, reason in events(cfn, "web")]
        assert any("waiting again for CodeDeploy deployment d-" in r for r in reasons), reasons
        ecs = server.client("ecs")
        cluster, service = _physical(cfn, "Cluster"), _physical(cfn, "Service")
        (left,) = [
            s
            for s in ecs.describe_task_sets(cluster=cluster, service=service)["taskSets"]
            if s["status"] != "DRAINING"
        ]
        assert left["id"] == _physical(cfn, "BlueTaskSet")
        assert left["status"] == "PRIMARY"
