"""The CLI's live view of a traffic shift shows the split as it moves: a Lambda alias's
weight on the target version, an ECS service's weights on its two task sets."""

from __future__ import annotations

from typing import Any

from shipyard.cli import progress


def _target(weight: float, allow: str) -> dict[str, Any]:
    return {
        "deploymentTargetType": "LambdaTarget",
        "lambdaTarget": {
            "targetId": "orders:live",
            "status": "InProgress",
            "lifecycleEvents": [
                {"lifecycleEventName": "BeforeAllowTraffic", "status": "Succeeded"},
                {"lifecycleEventName": "AllowTraffic", "status": allow},
                {"lifecycleEventName": "AfterAllowTraffic", "status": "Pending"},
            ],
            "lambdaFunctionInfo": {
                "functionName": "orders",
                "functionAlias": "live",
                "currentVersion": "1",
                "targetVersion": "2",
                "targetVersionWeight": weight,
            },
        },
    }


DEPLOYMENT = {"deploymentId": "d-LAMBDA001", "status": "InProgress", "createTime": 100.0}


def test_the_live_table_shows_the_split_beside_the_alias() -> None:
    lines = progress.live_table(DEPLOYMENT, [_target(10.0, "InProgress")], now=101.0)

    assert any(line.startswith("orders:live (10% on v2)") for line in lines), lines


def test_each_move_of_the_weight_is_a_change_line() -> None:
    _, before = progress.change_lines({}, DEPLOYMENT, [_target(10.0, "InProgress")], 101.0)

    lines, _ = progress.change_lines(before, DEPLOYMENT, [_target(40.0, "InProgress")], 102.5)

    assert lines == ["[  2.5s] orders:live  traffic 40% on v2"]


def test_a_host_target_has_no_split() -> None:
    host = {"instanceTarget": {"targetId": "web-1", "status": "Pending", "lifecycleEvents": []}}

    assert progress.target_of(host).traffic == ""


def _ecs_target(green: float) -> dict[str, Any]:
    def task_set(label: str, weight: float) -> dict[str, Any]:
        return {"identifer": f"ecs-svc/{label}", "taskSetLabel": label, "trafficWeight": weight}

    return {
        "deploymentTargetType": "ECSTarget",
        "ecsTarget": {
            "targetId": "main:web",
            "status": "InProgress",
            "lifecycleEvents": [{"lifecycleEventName": "AllowTraffic", "status": "InProgress"}],
            "taskSetsInfo": [task_set("BLUE", 100 - green), task_set("GREEN", green)],
        },
    }


def test_an_ecs_service_shows_its_task_sets_weights() -> None:
    lines = progress.live_table(DEPLOYMENT, [_ecs_target(10.0)], now=101.0)
    assert any(line.startswith("main:web (90% blue / 10% green)") for line in lines), lines

    _, before = progress.change_lines({}, DEPLOYMENT, [_ecs_target(10.0)], 101.0)
    lines, _ = progress.change_lines(before, DEPLOYMENT, [_ecs_target(100.0)], 103.0)
    assert lines == ["[  3.0s] main:web  traffic 0% blue / 100% green"]


def test_an_ecs_service_with_one_task_set_has_no_split() -> None:
    target = _ecs_target(100.0)
    target["ecsTarget"]["taskSetsInfo"] = target["ecsTarget"]["taskSetsInfo"][1:]
    assert progress.target_of(target).traffic == ""
