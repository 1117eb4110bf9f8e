"""The embedded ELBv2 carrying real traffic through a real HAProxy: weighted shifts and
draining under load without a failed request (HAProxy retries are off), rules, health
checks, and a server restart that leaves the load balancer serving."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, free_port, start_live_server
from tests.e2e.haproxy_fleet import TROUBLE
from tests.e2e.http_load import Request, between, start_load, summarize
from tests.elbv2.conftest import TIME_SCALE_MINUTE
from tests.elbv2.scenario import blue_green, forward, target_group
from tests.elbv2.web_targets import fetch, wait_healthy, web_targets
from tests.support import wait_until
from tests.traffic.haproxy_process import haproxy_binary

PHASE_REQUESTS = 3000
TOLERANCE = 0.04  # over 4 standard deviations of a 50/50 draw of 3000 requests


def green_share(requests: list[Request]) -> float:
    green = sum(r.body.startswith("green") for r in requests)
    return green / len(requests)


def test_weighted_shifts_and_draining_under_load_lose_nothing(
    elbv2: object, elb_server: LiveServer, tmp_path: Path
) -> None:
    blue_names = ("blue-1", "blue-2", "blue-3")
    green_names = ("green-1", "green-2", "green-3")
    with web_targets(*blue_names, *green_names) as targets:
        balancer = blue_green(
            elbv2,
            [targets[n] for n in blue_names],
            [targets[n] for n in green_names],
        )
        assert fetch(balancer.test_url)[1].startswith("green")
        assert fetch(balancer.production_url + "preview/x")[1].startswith("green")
        assert fetch(balancer.production_url)[1].startswith("blue")
        load = start_load(
            balancer.production_url,
            tmp_path / "load.tsv",
            connections=8,
            seconds=120,
            max_requests=4 * PHASE_REQUESTS + 4000,
        )
        phases: list[tuple[int, float, float]] = []
        for green in (10, 50, 100):
            balancer.shift({"blue": 100 - green, "green": green})
            start = time.time()
            load.wait_for(load.sent() + PHASE_REQUESTS, timeout=60)
            phases.append((green, start, time.time()))
        # Drain a green target while it carries a third of the traffic.
        drained = targets["green-1"]
        balancer.elbv2.deregister_targets(  # type: ignore[attr-defined]
            TargetGroupArn=balancer.groups["green"],
            Targets=[{"Id": "127.0.0.1", "Port": drained.port}],
        )
        deregistered = time.time()

        def gone() -> bool:
            found = balancer.elbv2.describe_target_health(  # type: ignore[attr-defined]
                TargetGroupArn=balancer.groups["green"]
            )["TargetHealthDescriptions"]
            return all(d["Target"]["Port"] != drained.port for d in found)

        wait_until(gone, "the drained target to leave the group", 30)
        left = max(time.time(), deregistered + 0.5)
        time.sleep(max(0.0, left - time.time()))  # the window below starts after it
        load.wait_for(load.sent() + 1000, timeout=60)
        requests = load.stop()
        # Nothing was hidden from the client either: no retries, no redispatches, no
        # connection or response errors on any server, in HAProxy's own counters.
        assert _trouble(elb_server, balancer.lb_arn) == dict.fromkeys(TROUBLE, 0)

    summary = summarize(requests)
    assert summary.failures == 0, {k: v for k, v in summary.bodies.items() if k[0].isdigit()}
    for green, start, end in phases:
        share = green_share(between(requests, start, end))
        assert abs(share - green / 100) <= TOLERANCE, (green, share)
    # Requests sent once the target had left the group (at least half a second after
    # the call, so that none of them was already under way to it).
    after = between(requests, left, time.time())
    assert after and not any(r.body == "green-1" for r in after)
    assert {r.body for r in after} == {"green-2", "green-3"}


def test_health_checks_turn_a_dead_target_unhealthy(elbv2: object) -> None:
    with web_targets("blue-1", "blue-2", "green-1") as targets:
        balancer = blue_green(elbv2, [targets["blue-1"], targets["blue-2"]], [targets["green-1"]])
        targets["blue-2"].stop()

        def health() -> dict[int, dict[str, str]]:
            found = balancer.elbv2.describe_target_health(  # type: ignore[attr-defined]
                TargetGroupArn=balancer.groups["blue"]
            )["TargetHealthDescriptions"]
            return {d["Target"]["Port"]: d["TargetHealth"] for d in found}

        wait_until(
            lambda: health()[targets["blue-2"].port]["State"] == "unhealthy",
            lambda: f"blue-2 unhealthy: {health()}",
        )
        dead = health()[targets["blue-2"].port]
        assert dead["Reason"] == "Target.FailedHealthChecks"
        assert health()[targets["blue-1"].port] == {"State": "healthy"}
        assert {fetch(balancer.production_url)[1] for _ in range(20)} == {"blue-1"}


def test_a_new_target_is_initial_until_its_checks_pass(elbv2: object) -> None:
    with web_targets("blue-1") as targets:
        tg = target_group(
            elbv2, "slow", HealthCheckIntervalSeconds=300, HealthCheckTimeoutSeconds=2
        )
        lb = elbv2.create_load_balancer(Name="slow")["LoadBalancers"][0]  # type: ignore[attr-defined]
        elbv2.create_listener(  # type: ignore[attr-defined]
            LoadBalancerArn=lb["LoadBalancerArn"], Port=free_port(), DefaultActions=forward(tg)
        )
        elbv2.register_targets(  # type: ignore[attr-defined]
            TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": targets["blue-1"].port}]
        )
        found = elbv2.describe_target_health(TargetGroupArn=tg)  # type: ignore[attr-defined]
        health = found["TargetHealthDescriptions"][0]["TargetHealth"]
        # 300 s checks (6 s here): the second, passing check is seconds away.
        assert health["State"] == "initial"
        assert health["Reason"] in ("Elb.RegistrationInProgress", "Elb.InitialHealthChecking")


def test_the_load_balancer_outlives_a_server_restart(tmp_path: Path) -> None:
    haproxy_binary()
    data_dir = tmp_path / "s"
    options = {"elb_keep_running": True, "minute_seconds": TIME_SCALE_MINUTE}
    with web_targets("blue-1", "green-1") as targets:
        first = start_live_server(data_dir, **options)
        server: LiveServer = next(first)
        try:
            elbv2 = server.client("elbv2")
            balancer = blue_green(elbv2, [targets["blue-1"]], [targets["green-1"]])
            master = (data_dir / "elb" / balancer.lb_arn.rsplit("/", 1)[1] / "pid").read_text()
        finally:
            next(first, None)  # the server stops; HAProxy keeps serving
        try:
            assert fetch(balancer.production_url) == (200, "blue-1")
            second = start_live_server(data_dir, **options)
            server = next(second)
            try:
                elbv2 = server.client("elbv2")
                balancer.elbv2 = elbv2
                pid_file = data_dir / "elb" / balancer.lb_arn.rsplit("/", 1)[1] / "pid"
                assert pid_file.read_text() == master  # adopted, not restarted
                balancer.shift({"blue": 0, "green": 1})
                assert fetch(balancer.production_url) == (200, "green-1")
                wait_healthy(elbv2, balancer.groups["blue"], 1)
            finally:
                next(second, None)
        finally:
            _stop_leftover(data_dir)
        wait_until(lambda: _refused(balancer.production_url), "HAProxy to stop")


def _stop_leftover(data_dir: Path) -> None:
    """Stop the HAProxy processes of a server's load balancers (by their pid files), as
    a machine's reboot would, or after a test whose server let them run on."""
    for pid_file in (data_dir / "elb").glob("*/pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def test_reloads_under_load_lose_nothing(elbv2: Any, tmp_path: Path) -> None:
    """Changes HAProxy takes by a reload (a new listener, a new rule, a new target group
    in a listener's forward, new health check settings) while requests flow."""
    with web_targets("blue-1", "blue-2", "green-1") as targets:
        lb = elbv2.create_load_balancer(Name="reload")["LoadBalancers"][0]["LoadBalancerArn"]
        blue, green = target_group(elbv2, "blue"), target_group(elbv2, "green")
        port = free_port()
        listener = elbv2.create_listener(
            LoadBalancerArn=lb, Port=port, DefaultActions=forward(blue)
        )["Listeners"][0]["ListenerArn"]
        elbv2.register_targets(
            TargetGroupArn=blue,
            Targets=[{"Id": "127.0.0.1", "Port": targets[n].port} for n in ("blue-1", "blue-2")],
        )
        elbv2.register_targets(
            TargetGroupArn=green, Targets=[{"Id": "127.0.0.1", "Port": targets["green-1"].port}]
        )
        wait_healthy(elbv2, blue, 2)
        load = start_load(
            f"http://127.0.0.1:{port}/", tmp_path / "load.tsv", connections=8, max_requests=20_000
        )
        weighted = [
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": blue, "Weight": 50},
                        {"TargetGroupArn": green, "Weight": 50},
                    ]
                },
            }
        ]
        changes = [
            lambda: elbv2.create_listener(
                LoadBalancerArn=lb, Port=free_port(), DefaultActions=forward(blue)
            ),
            lambda: elbv2.create_rule(
                ListenerArn=listener,
                Priority=1,
                Conditions=[{"Field": "path-pattern", "Values": ["/other/*"]}],
                Actions=forward(blue),
            ),
            lambda: elbv2.modify_listener(ListenerArn=listener, DefaultActions=weighted),
            lambda: elbv2.modify_target_group(TargetGroupArn=blue, HealthCheckPath="/ready"),
        ]
        for change in changes:
            change()
            load.wait_for(load.sent() + 500, timeout=60)
        requests = load.stop()
    summary = summarize(requests)
    assert summary.failures == 0, {k: v for k, v in summary.bodies.items() if k[0].isdigit()}
    assert {"blue-1", "blue-2", "green-1"} <= set(summary.bodies)


def test_a_load_balancer_that_died_is_started_again_with_the_server(tmp_path: Path) -> None:
    haproxy_binary()
    data_dir = tmp_path / "s"
    options = {"elb_keep_running": True, "minute_seconds": TIME_SCALE_MINUTE}
    with web_targets("blue-1", "green-1") as targets:
        first = start_live_server(data_dir, **options)
        server: LiveServer = next(first)
        try:
            balancer = blue_green(server.client("elbv2"), [targets["blue-1"]], [targets["green-1"]])
            balancer.elbv2.deregister_targets(  # drained and removed before the restart
                TargetGroupArn=balancer.groups["green"],
                Targets=[{"Id": "127.0.0.1", "Port": targets["green-1"].port}],
            )
        finally:
            next(first, None)
        try:
            _stop_leftover(data_dir)  # the machine rebooted, say
            wait_until(lambda: _refused(balancer.production_url), "HAProxy to stop")
            second = start_live_server(data_dir, **options)
            server = next(second)
            try:
                assert fetch(balancer.production_url) == (200, "blue-1")
                assert fetch(balancer.production_url + "preview/")[0] == 503  # green is empty
            finally:
                next(second, None)
        finally:
            _stop_leftover(data_dir)


def _refused(url: str) -> bool:
    try:
        fetch(url, timeout=1)
    except OSError:
        return True
    return False


def test_draining_lets_requests_in_flight_finish(elbv2: Any, elb_server: LiveServer) -> None:
    with web_targets("blue-1", "blue-2", "green-1") as targets:
        balancer = blue_green(elbv2, [targets["blue-1"], targets["blue-2"]], [targets["green-1"]])
        balancer.elbv2.deregister_targets(  # blue-2 leaves; blue-1 takes everything
            TargetGroupArn=balancer.groups["blue"],
            Targets=[{"Id": "127.0.0.1", "Port": targets["blue-2"].port}],
        )
        wait_healthy(elbv2, balancer.groups["blue"], 1)
        answers: list[tuple[int, str]] = []
        slow = threading.Thread(
            target=lambda: answers.append(fetch(balancer.production_url + "slow/2", timeout=10))
        )
        slow.start()

        def busy() -> bool:
            stat = _server_stat(elb_server, balancer, targets["blue-1"].port)
            return stat is not None and stat.sessions > 0

        wait_until(busy, "the slow request to reach blue-1", 5)
        elbv2.deregister_targets(
            TargetGroupArn=balancer.groups["blue"],
            Targets=[{"Id": "127.0.0.1", "Port": targets["blue-1"].port}],
        )
        found = elbv2.describe_target_health(TargetGroupArn=balancer.groups["blue"])
        states = {d["Target"]["Port"]: d["TargetHealth"] for d in found["TargetHealthDescriptions"]}
        assert states[targets["blue-1"].port]["State"] == "draining"
        assert states[targets["blue-1"].port]["Reason"] == "Target.DeregistrationInProgress"
        slow.join(10)
        assert answers == [(200, "blue-1")]
        wait_until(
            lambda: (
                not elbv2.describe_target_health(TargetGroupArn=balancer.groups["blue"])[
                    "TargetHealthDescriptions"
                ]
            ),
            "blue-1 removed once idle",
        )


def test_a_matcher_mismatch_is_reported(elbv2: Any) -> None:
    with web_targets("blue-1") as targets:
        tg = target_group(
            elbv2, "picky", HealthCheckPath="/missing", Matcher={"HttpCode": "200-299"}
        )
        lb = elbv2.create_load_balancer(Name="picky")["LoadBalancers"][0]["LoadBalancerArn"]
        elbv2.create_listener(LoadBalancerArn=lb, Port=free_port(), DefaultActions=forward(tg))
        elbv2.register_targets(
            TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": targets["blue-1"].port}]
        )

        def health() -> dict[str, str]:
            found = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return dict(found[0]["TargetHealth"])

        wait_until(lambda: health()["State"] == "unhealthy", lambda: f"unhealthy: {health()}")
        assert health()["Reason"] == "Target.ResponseCodeMismatch"
        assert health()["Description"] == "Health checks failed with these codes: [404]"


def test_host_header_rules_route(elbv2: Any) -> None:
    with web_targets("blue-1", "green-1") as targets:
        balancer = blue_green(elbv2, [targets["blue-1"]], [targets["green-1"]])
        elbv2.create_rule(
            ListenerArn=balancer.production,
            Priority=5,
            Conditions=[{"Field": "host-header", "Values": ["*.test.example"]}],
            Actions=forward(balancer.groups["green"]),
        )
        import urllib.request

        def with_host(host: str) -> str:
            request = urllib.request.Request(balancer.production_url, headers={"Host": host})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(request, timeout=5) as answer:
                return str(answer.read().decode())

        assert with_host("shop.test.example") == "green-1"
        assert with_host("SHOP.TEST.EXAMPLE:8080") == "green-1"
        assert with_host("shop.example") == "blue-1"


def _trouble(server: LiveServer, lb_arn: str) -> dict[str, int]:
    balancers = server.services.load_balancers
    assert balancers is not None
    answer = balancers.process(lb_arn).api.run("show stat -1 4 -1")
    rows = list(csv.DictReader(answer.removeprefix("# ").splitlines()))
    assert rows
    return {key: sum(int(row[key] or 0) for row in rows) for key in TROUBLE}


def _server_stat(server: LiveServer, balancer: Any, port: int) -> Any:
    """HAProxy's own view of a blue target (through its runtime API)."""
    from shipyard.containers.elbv2.runtime import BalancerRuntime

    balancers = server.services.load_balancers
    assert balancers is not None
    runtime = BalancerRuntime(balancers.process(balancer.lb_arn).api)
    backend = "tg_" + balancer.groups["blue"].rsplit("/", 1)[1]
    return runtime.stats(backend).get(f"t-127.0.0.1-{port}")


def test_a_listener_moves_to_another_port(elbv2: Any) -> None:
    with web_targets("blue-1", "green-1") as targets:
        balancer = blue_green(elbv2, [targets["blue-1"]], [targets["green-1"]])
        new_port = free_port()
        moved = elbv2.modify_listener(ListenerArn=balancer.test, Port=new_port)["Listeners"][0]
        assert moved["Port"] == new_port
        assert moved["DefaultActions"][0]["TargetGroupArn"] == balancer.groups["green"]
        assert fetch(f"http://127.0.0.1:{new_port}/") == (200, "green-1")
        wait_until(lambda: _refused(balancer.test_url), "the old port to close")
        code = elbv2.exceptions.DuplicateListenerException
        with pytest.raises(code):
            elbv2.modify_listener(ListenerArn=balancer.test, Port=balancer.production_port)


def test_a_load_balancer_that_dies_comes_back(elbv2: Any, elb_server: LiveServer) -> None:
    with web_targets("blue-1", "green-1") as targets:
        balancer = blue_green(elbv2, [targets["blue-1"]], [targets["green-1"]])
        _stop_leftover(elb_server.data_dir)  # HAProxy is killed under the running server
        wait_until(lambda: _refused(balancer.production_url), "HAProxy to stop")

        def serving() -> bool:
            try:
                return fetch(balancer.production_url, timeout=1) == (200, "blue-1")
            except OSError:
                return False

        wait_until(serving, "the load balancer to be started again", 20)
        wait_healthy(elbv2, balancer.groups["green"], 1)
