"""What only a real HAProxy shows about weighted routing: real requests split by the
weights, the test listener following the test route, and ``verify`` reading what
HAProxy really does. (The contract suite already runs every weighted router behaviour on
HAProxy.)"""

from __future__ import annotations

from collections import Counter

from shipyard.traffic.weighted import Verified
from tests.traffic.conftest import get
from tests.traffic.weighted_haproxy import WeightedHAProxy

REQUESTS = 1000


def served(url: str, count: int) -> Counter[str]:
    """Send ``count`` requests one after another; how many each app answered (or the
    HTTP status of those no app answered)."""
    answers = [get(url + "/") for _ in range(count)]
    return Counter(a.body if a.status == 200 else str(a.status) for a in answers)


def test_requests_split_by_the_weights(weighted_haproxy: WeightedHAProxy) -> None:
    router = weighted_haproxy.router()
    router.set_weights("live", {"blue": 90, "green": 10})

    counts = served(weighted_haproxy.url, REQUESTS)

    assert set(counts) == {"blue", "green"}
    assert abs(counts["green"] / REQUESTS - 0.10) <= 0.03


def test_all_traffic_moves_at_100(weighted_haproxy: WeightedHAProxy) -> None:
    router = weighted_haproxy.router()
    assert served(weighted_haproxy.url, 20) == {"blue": 20}

    router.set_weights("live", {"green": 100})

    assert served(weighted_haproxy.url, 20) == {"green": 20}


def test_the_test_listener_follows_the_test_route(weighted_haproxy: WeightedHAProxy) -> None:
    router = weighted_haproxy.router()
    assert served(weighted_haproxy.test_url, 3) == {"503": 3}  # no test target yet

    router.set_test_route("live", "green")
    assert served(weighted_haproxy.test_url, 10) == {"green": 10}
    assert served(weighted_haproxy.url, 10) == {"blue": 10}  # production is untouched

    router.set_test_route("live", None)
    assert served(weighted_haproxy.test_url, 3) == {"503": 3}


def test_verify_counts_a_server_in_maintenance_as_taking_nothing(
    weighted_haproxy: WeightedHAProxy,
) -> None:
    router = weighted_haproxy.router()
    router.set_weights("live", {"blue": 50, "green": 50})

    assert weighted_haproxy.api().run("set server live/green state maint").strip() == ""

    assert router.weights("live") == {"blue": 50, "green": 50}  # the weights are set...
    assert router.verify("live", {"blue": 50, "green": 50}) is Verified.NO  # ...but unused
    assert router.verify("live", {"blue": 100}) is Verified.YES
    assert served(weighted_haproxy.url, 10) == {"blue": 10}


def test_weights_set_outside_shipyard_read_as_percents(weighted_haproxy: WeightedHAProxy) -> None:
    answer = weighted_haproxy.api().run("set server solo/a weight 3; set server solo/b weight 1")
    assert answer.strip() == ""
    router = weighted_haproxy.router()

    assert router.weights("solo") == {"a": 75, "b": 25}
    assert router.verify("solo", {"a": 75, "b": 25}) is Verified.YES
