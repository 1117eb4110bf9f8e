"""The pure parts: a load balancer's HAProxy configuration and weighted-forward map."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shipyard.containers.elbv2.haproxy_config import (
    SLOT,
    Condition,
    Files,
    Frontend,
    Group,
    HealthCheck,
    Route,
    Server,
    Topology,
    _cut,
    full,
    map_entries,
    structure,
)
from shipyard.containers.elbv2.topology import matcher_codes

FILES = Files(Path("/run/lb/a.sock"), Path("/run/lb/actions.map"), Path("/run/lb/state"))
CHECK = HealthCheck(True, "/health", None, 0.1, 1.0, 2, 3, (200,))


def topology() -> Topology:
    rule = Route((Condition("path-pattern", ("/api/*", "/v?.txt")),), (("tg_b", 1),))
    default = Route((), (("tg_a", 90), ("tg_b", 10)))
    return Topology(
        "127.0.0.1",
        (Frontend("l_1", 8080, (rule, default)),),
        (Group("tg_a", CHECK), Group("tg_b", CHECK)),
        {"tg_a": (Server("t-127.0.0.1-81", "127.0.0.1", 81),), "tg_b": ()},
    )


def test_routes_draw_once_from_the_first_match_and_look_up_the_map() -> None:
    text = structure(topology(), FILES, 4096)
    assert "    acl r0_0 path -m reg '^/api/.*$' '^/v.[.]txt$'" in text
    assert (
        "http-request set-var(txn.pick) rand(10000),add(0) if !{ var(txn.pick) -m found } r0_0"
        in text
    )
    assert (
        "http-request set-var(txn.pick) rand(10000),add(10000) if !{ var(txn.pick) -m found }"
        in text
    )
    assert "use_backend %[var(txn.pick),map_int(/run/lb/actions.map)]" in text
    assert "    retries 0" in text and "option idle-close-on-response" in text
    assert "    server " not in text  # servers are not structure


def test_servers_join_their_backend_for_a_start() -> None:
    text = full(topology(), FILES, 4096)
    assert "    server t-127.0.0.1-81 127.0.0.1:81 weight 1 check inter 100ms rise 2 fall 3" in text
    assert text.index("server t-127.0.0.1-81") > text.index("backend tg_a")
    assert text.index("server t-127.0.0.1-81") < text.index("backend tg_b")


def test_map_cuts_each_slot_by_weight() -> None:
    assert map_entries(topology()) == [
        ("0:9999", "tg_b"),
        ("10000:18999", "tg_a"),
        ("19000:19999", "tg_b"),
    ]
    assert _cut(0, [("a", 0), ("b", 5)]) == [("0:9999", "b")]


@given(st.lists(st.integers(0, 999), min_size=1, max_size=5).filter(any))
def test_a_cut_covers_its_slot_exactly_in_proportion(weights: list[int]) -> None:
    forwards = [(f"g{n}", w) for n, w in enumerate(weights)]
    cut = _cut(3 * SLOT, forwards)
    covered = []
    for key, backend in cut:
        low, high = (int(x) for x in key.split(":"))
        covered += range(low, high + 1)
        share = (high - low + 1) / SLOT
        weight = dict(forwards)[backend]
        assert abs(share - weight / sum(weights)) <= 1 / SLOT
    assert covered == list(range(3 * SLOT, 4 * SLOT))


def test_matcher_codes() -> None:
    assert matcher_codes("200") == (200,)
    assert matcher_codes("200,202") == (200, 202)
    assert matcher_codes("200-203") == (200, 201, 202, 203)
