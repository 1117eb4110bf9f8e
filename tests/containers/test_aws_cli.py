"""The ECS API through the real AWS CLI (``aws ecs ... --endpoint-url``), tasks on Podman."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.containers.ecs.images import HTTPD_IMAGE
from tests.conftest import LiveServer
from tests.containers.conftest import TG_BLUE, TG_GREEN
from tests.support import wait_until

pytestmark = pytest.mark.e2e
AWS_CLI = Path(sys.executable).parent / "aws"


def aws(server: LiveServer, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(AWS_CLI), "ecs", *args, "--endpoint-url", server.url, "--output", "json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


def aws_json(server: LiveServer, *args: str) -> Any:
    return json.loads(aws(server, *args).stdout or "{}")


def test_a_code_deploy_service_through_the_cli(ecs_server: LiveServer, tmp_path: Path) -> None:
    aws_json(ecs_server, "create-cluster", "--cluster-name", "cli")
    containers = [
        {
            "name": "web",
            "image": HTTPD_IMAGE,
            "portMappings": [{"containerPort": 80}],
            "environment": [{"name": "VERSION", "value": "cli"}],
        }
    ]
    spec = tmp_path / "containers.json"
    spec.write_text(json.dumps(containers))
    registered = aws_json(
        ecs_server,
        *("register-task-definition", "--family", "cli-web"),
        *("--container-definitions", f"file://{spec}"),
    )
    assert registered["taskDefinition"]["taskDefinitionArn"].endswith("task-definition/cli-web:1")
    created = aws_json(
        ecs_server,
        *("create-service", "--cluster", "cli", "--service-name", "web"),
        *("--task-definition", "cli-web:1", "--desired-count", "1"),
        *("--deployment-controller", "type=CODE_DEPLOY"),
        *("--load-balancers", f"targetGroupArn={TG_BLUE},containerName=web,containerPort=80"),
    )
    first = created["service"]["taskSets"][0]["id"]

    def steady(set_id: str) -> bool:
        found = aws_json(
            ecs_server,
            *("describe-task-sets", "--cluster", "cli", "--service", "web"),
            *("--task-sets", set_id),
        )["taskSets"][0]
        return bool(found["stabilityStatus"] == "STEADY_STATE" and found["runningCount"] == 1)

    wait_until(lambda: steady(first), "the first task set steady", timeout=90, every=0.5)
    second = aws_json(
        ecs_server,
        *("create-task-set", "--cluster", "cli", "--service", "web"),
        *("--task-definition", "cli-web", "--external-id", "d-CLI"),
        *("--load-balancers", f"targetGroupArn={TG_GREEN},containerName=web,containerPort=80"),
    )["taskSet"]["id"]
    wait_until(lambda: steady(second), "the second task set steady", timeout=90, every=0.5)
    moved = aws_json(
        ecs_server,
        *("update-service-primary-task-set", "--cluster", "cli", "--service", "web"),
        *("--primary-task-set", second),
    )
    assert moved["taskSet"]["status"] == "PRIMARY"
    tasks = aws_json(ecs_server, "list-tasks", "--cluster", "cli", "--service-name", "web")
    assert len(tasks["taskArns"]) == 2

    refused = aws(
        ecs_server, "describe-services", "--cluster", "nope", "--services", "web", ok=False
    )
    assert "ClusterNotFoundException" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0  # one readable line
