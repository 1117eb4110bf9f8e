"""``shipyard app`` and ``shipyard group`` against a live server: every setting a group
takes (targets, config, style and load balancer, auto-rollback, alarms, triggers,
approval) with sensible defaults, and no service role asked for."""

from __future__ import annotations

import json

from tests.conftest import LiveServer
from tests.test_cli import assert_one_line_error, cli_env, shipyard


def run(server: LiveServer, *args: str) -> str:
    result = shipyard(*args, env=cli_env(server))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_group_create_update_show_cover_every_setting(live_server: LiveServer) -> None:
    run(live_server, "app", "create", "shop")
    run(live_server, "alarm", "put", "errors", "--http", "http://127.0.0.1:9/health")
    run(
        live_server, "group", "create", "shop", "web", "--tag", "role=web", "--tag", "canary",
        "--deployment-config", "CodeDeployDefault.HalfAtATime",
        "--auto-rollback", "failure", "alarm", "--alarm", "errors",
        "--trigger", "chat=https://hooks.example/deploys", "--require-approval",
    )  # fmt: skip
    group = json.loads(run(live_server, "group", "show", "shop", "web", "--output", "json"))
    assert group["serviceRoleArn"] == "arn:aws:iam::000000000000:role/shipyard"
    assert group["onPremisesInstanceTagFilters"] == [
        {"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"},
        {"Key": "canary", "Type": "KEY_ONLY"},
    ]
    assert group["deploymentConfigName"] == "CodeDeployDefault.HalfAtATime"
    assert group["autoRollbackConfiguration"] == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    assert group["alarmConfiguration"]["alarms"] == [{"name": "errors"}]
    (trigger,) = group["triggerConfigurations"]
    assert trigger["triggerTargetArn"] == "https://hooks.example/deploys"
    assert group["shipyardOptions"] == {"requireApproval": True}

    run(
        live_server, "group", "update", "shop", "web", "--auto-rollback", "--alarm", "",
        "--no-require-approval", "--style", "in-place", "--load-balancer", "web-backend",
    )  # fmt: skip
    shown = run(live_server, "group", "show", "shop", "web")
    assert "Auto-rollback  off" in shown
    assert "Alarms         off" in shown
    assert "Approval       not required" in shown
    assert "Load balancer  web-backend" in shown
    assert "Style          IN_PLACE WITH_TRAFFIC_CONTROL" in shown
    assert "Targets        role=web canary=*" in shown  # untouched by update
    assert run(live_server, "group", "show", "shop").split() == ["web"]

    assert json.loads(run(live_server, "app", "list", "--output", "json")) == ["shop"]
    run(live_server, "app", "delete", "shop")
    assert run(live_server, "app", "list") == ""


def test_setup_mistakes_are_one_line(live_server: LiveServer) -> None:
    env = cli_env(live_server)
    assert_one_line_error(shipyard("group", "create", "nope", "web", "--tag", "a=b", env=env),
                          4, "ApplicationDoesNotExistException", "shipyard app list")  # fmt: skip
    run(live_server, "app", "create", "shop")
    assert_one_line_error(shipyard("group", "create", "shop", "web", env=env), 2, "--tag")
    assert_one_line_error(
        shipyard("group", "update", "shop", "web", env=env), 2, "nothing to change"
    )
    bad = shipyard("group", "create", "shop", "web", "--tag", "a=b", "--trigger", "x", env=env)
    assert_one_line_error(bad, 2, "NAME=URL")
