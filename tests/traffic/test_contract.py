"""The traffic router contract, run on the memory router and on a real HAProxy.

Every router must behave the same to the deployment runner: block drains then takes the
server out, allow puts it back and waits for health, both are idempotent, and anything
unknown or impossible is a TrafficError.
"""

from __future__ import annotations

import pytest

from shipyard.traffic import (
    ROUTERS,
    RouterConfig,
    ServerState,
    TrafficError,
    backends_for,
    get_router,
)
from shipyard.traffic.memory import MemoryRouter
from tests.traffic.conftest import Harness

# The fake clock adds up float steps; a microsecond covers their rounding.
EPSILON = 1e-6


def state(harness: Harness, server: str) -> ServerState:
    [found] = [s for s in harness.router.describe("web") if s.server == server]
    return found


def test_describe_lists_every_server_of_the_backend(harness: Harness) -> None:
    servers = harness.router.describe("web")

    assert [(s.backend, s.server, s.admin, s.weight, s.sessions) for s in servers] == [
        ("web", "s1", "ready", 1, 0),
        ("web", "s2", "ready", 1, 0),
        ("web", "s3", "ready", 1, 0),
    ]
    # s1 and s2 have a health check that passes; s3 has none.
    assert [s.healthy for s in servers] == [True, True, None]


def test_block_takes_the_server_out_and_leaves_the_others(harness: Harness) -> None:
    harness.router.block("web", "s1", drain_timeout=5, clock=harness.clock)

    assert state(harness, "s1").admin == "maint"
    assert [state(harness, name).admin for name in ("s2", "s3")] == ["ready", "ready"]


def test_allow_puts_the_server_back_and_healthy(harness: Harness) -> None:
    harness.router.block("web", "s1", drain_timeout=5, clock=harness.clock)

    harness.router.allow("web", "s1", health_timeout=5)

    after = state(harness, "s1")
    assert (after.admin, after.healthy) == ("ready", True)


def test_allow_a_server_without_health_check(harness: Harness) -> None:
    harness.router.block("web", "s3", drain_timeout=5, clock=harness.clock)

    harness.router.allow("web", "s3", health_timeout=5)

    after = state(harness, "s3")
    assert (after.admin, after.healthy) == ("ready", None)


def test_block_and_allow_are_idempotent(harness: Harness) -> None:
    router = harness.router
    router.block("web", "s2", drain_timeout=5, clock=harness.clock)
    router.block("web", "s2", drain_timeout=5, clock=harness.clock)
    assert state(harness, "s2").admin == "maint"

    router.allow("web", "s2", health_timeout=5)
    router.allow("web", "s2", health_timeout=5)
    after = state(harness, "s2")
    assert (after.admin, after.healthy) == ("ready", True)


def test_block_waits_for_the_request_in_flight(harness: Harness) -> None:
    held = harness.hold("s1", 0.6)

    harness.router.block("web", "s1", drain_timeout=5, clock=harness.clock)

    returned = harness.clock()
    assert returned >= held.started + held.seconds - EPSILON
    assert returned < held.started + 5
    after = state(harness, "s1")
    assert (after.admin, after.sessions) == ("maint", 0)
    harness.settle()
    assert [r.status for r in held.response] == [200]


def test_block_gives_up_waiting_at_the_drain_timeout(harness: Harness) -> None:
    held = harness.hold("s2", 1.0)
    started = harness.clock()

    harness.router.block("web", "s2", drain_timeout=0.3, clock=harness.clock)

    waited = harness.clock() - started
    assert 0.3 - EPSILON <= waited < 1.0
    after = state(harness, "s2")
    # Out of the pool, and the slow request is left to finish on its own.
    assert (after.admin, after.sessions) == ("maint", 1)
    harness.settle()
    assert [r.status for r in held.response] == [200]


def test_allow_fails_when_the_health_check_does_not_pass(harness: Harness) -> None:
    harness.router.block("web", "s2", drain_timeout=5, clock=harness.clock)
    harness.take_down("s2")
    started = harness.clock()

    with pytest.raises(TrafficError, match=r"'s2' in backend 'web' is .* after it was allowed"):
        harness.router.allow("web", "s2", health_timeout=0.6)

    assert harness.clock() - started >= 0.6 - EPSILON
    assert state(harness, "s2").healthy is False


def test_set_weight(harness: Harness) -> None:
    harness.router.set_weight("web", "s1", 0)
    harness.router.set_weight("web", "s2", 256)

    assert [s.weight for s in harness.router.describe("web")] == [0, 256, 1]


@pytest.mark.parametrize("weight", [-1, 257])
def test_set_weight_out_of_range(harness: Harness, weight: int) -> None:
    with pytest.raises(TrafficError, match="from 0 to 256"):
        harness.router.set_weight("web", "s1", weight)
    assert state(harness, "s1").weight == 1


def test_unknown_backend_or_server(harness: Harness) -> None:
    router = harness.router
    with pytest.raises(TrafficError, match="unknown backend 'nope'"):
        router.describe("nope")
    with pytest.raises(TrafficError, match="unknown backend 'nope'"):
        router.block("nope", "s1", drain_timeout=1, clock=harness.clock)
    with pytest.raises(TrafficError, match="unknown server 's9' in backend 'web'"):
        router.block("web", "s9", drain_timeout=1, clock=harness.clock)
    with pytest.raises(TrafficError, match="unknown server 's9' in backend 'web'"):
        router.allow("web", "s9", health_timeout=1)
    with pytest.raises(TrafficError, match="unknown server 's9' in backend 'web'"):
        router.set_weight("web", "s9", 3)


def test_names_that_could_smuggle_a_command_are_refused(harness: Harness) -> None:
    with pytest.raises(TrafficError, match="invalid server name"):
        harness.router.block("web", "s1 state ready; x", drain_timeout=1, clock=harness.clock)
    with pytest.raises(TrafficError, match="invalid backend name"):
        harness.router.describe("web\nshow info")
    assert state(harness, "s1").admin == "ready"


# -- the registry and the pieces around it (no router process needed) ----------------------


def test_registry_builds_each_kind_and_refuses_unknown_ones() -> None:
    assert sorted(ROUTERS) == ["haproxy", "memory"]
    assert isinstance(get_router(RouterConfig("memory")), MemoryRouter)
    with pytest.raises(TrafficError, match="unknown traffic router kind 'f5' \\(known: haproxy"):
        get_router(RouterConfig("f5"))
    with pytest.raises(TrafficError, match=r"invalid HAProxy runtime API address 'admin.sock'"):
        get_router(RouterConfig("haproxy", "admin.sock"))


def test_memory_router_seeded_from_its_address() -> None:
    router = get_router(RouterConfig("memory", "web=s1,s2; api=a1"))

    assert [(s.backend, s.server, s.admin) for s in router.describe("web")] == [
        ("web", "s1", "ready"),
        ("web", "s2", "ready"),
    ]
    assert [s.server for s in router.describe("api")] == ["a1"]
    with pytest.raises(TrafficError, match="expected 'backend=server,server'"):
        get_router(RouterConfig("memory", "web"))


def test_backends_for_load_balancer_info() -> None:
    info = {
        "elbInfoList": [{"name": "classic"}],
        "targetGroupInfoList": [{"name": "web"}, {"name": "classic"}, {}],
        "targetGroupPairInfoList": [{"targetGroups": [{"name": "blue"}, {"name": "green"}]}],
    }

    assert backends_for(info) == ["classic", "web"]
    assert backends_for(None) == []
    assert backends_for({}) == []
