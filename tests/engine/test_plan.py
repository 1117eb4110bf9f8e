"""Minimum-healthy-hosts arithmetic: the documented examples (reference §4.1, §4.2) as
tables, and whole simulated deployments as properties."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.engine.plan import (
    HealthRule,
    can_start_more,
    constraints_invalid,
    max_concurrency,
    minimum_healthy,
    order_hosts,
    verdict,
)

ONE_AT_A_TIME = HealthRule("MOST_CONCURRENCY", 1)
HALF_AT_A_TIME = HealthRule("FLEET_PERCENT", 50)
ALL_AT_ONCE = HealthRule("HOST_COUNT", 0)


# --- a small pure simulator -------------------------------------------------------------


@dataclass
class Run:
    """One simulated deployment: hosts start as the plan allows and report outcomes."""

    rule: HealthRule
    total: int
    succeeded: int = 0
    failed: int = 0
    in_flight: int = 0
    last_host_failed: bool = False
    most_in_flight: int = 0
    outcomes_used: list[bool] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.total - self.succeeded - self.failed - self.in_flight

    @property
    def healthy(self) -> int:
        return self.total - self.failed - self.in_flight

    def verdict(self) -> str:
        return verdict(
            self.rule,
            self.total,
            self.succeeded,
            self.failed,
            self.remaining,
            self.in_flight,
            self.last_host_failed,
        )

    def start_allowed(self) -> None:
        allowed = can_start_more(self.rule, self.total, self.healthy, self.in_flight)
        self.in_flight += min(allowed, self.remaining)
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def finish_one(self, success: bool) -> None:
        self.in_flight -= 1
        if success:
            self.succeeded += 1
        else:
            self.failed += 1
        self.last_host_failed = not success
        self.outcomes_used.append(success)


def simulate(rule: HealthRule, total: int, outcomes: list[bool]) -> Run:
    """Run to a verdict; ``outcomes[i]`` is the result of the i-th host to finish."""
    run = Run(rule, total)
    pending = iter(outcomes)
    while run.verdict() == "continue":
        run.start_allowed()
        assert run.in_flight > 0, "continuing with nothing in flight would hang forever"
        run.finish_one(next(pending))
    return run


def documented_outcome(rule: HealthRule, total: int, outcomes: list[bool]) -> str:
    """The user guide's wording: with N hosts and a minimum of M, the deployment tolerates
    N - M - 1 failures; failure number N - M still succeeds when it is the very last host;
    at least one host must succeed."""
    budget = total - minimum_healthy(rule, total)
    failures = 0
    for position, success in enumerate(outcomes, start=1):
        failures += not success
        is_last = position == total
        if failures == budget and not is_last:
            return "failed"
    return "succeeded" if failures < total else "failed"


# --- the documented examples ------------------------------------------------------------

EXAMPLES = [
    # (rule, total, minimum, at a time)
    pytest.param(HealthRule("HOST_COUNT", 6), 9, 6, 3, id="9 hosts HOST_COUNT 6"),
    pytest.param(HealthRule("FLEET_PERCENT", 40), 9, 4, 5, id="9 hosts 40%"),
    pytest.param(HALF_AT_A_TIME, 9, 5, 4, id="HalfAtATime on 9"),
    pytest.param(HealthRule("HOST_COUNT", 9), 10, 9, 1, id="10 hosts minimum 9"),
    pytest.param(HealthRule("HOST_COUNT", 8), 10, 8, 2, id="10 hosts minimum 8"),
    pytest.param(ALL_AT_ONCE, 10, 0, 10, id="10 hosts minimum 0"),
    pytest.param(HealthRule("FLEET_PERCENT", 0), 10, 0, 10, id="10 hosts 0%"),
    pytest.param(ONE_AT_A_TIME, 1, 0, 1, id="OneAtATime on 1"),
    pytest.param(ONE_AT_A_TIME, 2, 1, 1, id="OneAtATime on 2"),
    pytest.param(ONE_AT_A_TIME, 3, 2, 1, id="OneAtATime on 3"),
    pytest.param(ALL_AT_ONCE, 1, 0, 1, id="AllAtOnce on 1"),
    # Not documented: MOST_CONCURRENCY above 1 generalises to "all but value hosts healthy".
    pytest.param(HealthRule("MOST_CONCURRENCY", 3), 10, 7, 3, id="MOST_CONCURRENCY 3 on 10"),
    pytest.param(HealthRule("MOST_CONCURRENCY", 3), 2, 0, 2, id="MOST_CONCURRENCY 3 on 2"),
]


@pytest.mark.parametrize(("rule", "total", "minimum", "at_a_time"), EXAMPLES)
def test_minimum_and_concurrency(
    rule: HealthRule, total: int, minimum: int, at_a_time: int
) -> None:
    assert minimum_healthy(rule, total) == minimum
    assert max_concurrency(rule, total) == at_a_time
    assert not constraints_invalid(rule, total)
    assert simulate(rule, total, [True] * total).most_in_flight == at_a_time


@pytest.mark.parametrize(("rule", "total", "minimum", "at_a_time"), EXAMPLES)
def test_every_outcome_sequence_matches_the_documented_rule(
    rule: HealthRule, total: int, minimum: int, at_a_time: int
) -> None:
    for outcomes in itertools.product([True, False], repeat=total):
        run = simulate(rule, total, list(outcomes))
        expected = documented_outcome(rule, total, list(outcomes))
        assert run.verdict() == expected, outcomes
        assert run.most_in_flight <= at_a_time
        if expected == "succeeded":
            assert run.succeeded >= max(minimum, 1)


@pytest.mark.parametrize(
    ("rule", "total", "minimum"),
    [
        pytest.param(HealthRule("FLEET_PERCENT", 95), 10, 10, id="10 hosts 95%"),
        pytest.param(HealthRule("HOST_COUNT", 9), 9, 9, id="9 hosts HOST_COUNT 9"),
        pytest.param(HealthRule("HOST_COUNT", 12), 10, 12, id="HOST_COUNT above fleet"),
        pytest.param(HALF_AT_A_TIME, 1, 1, id="HalfAtATime on 1 rounds up"),
        pytest.param(ONE_AT_A_TIME, 0, 0, id="no hosts"),
    ],
)
def test_health_constraints_invalid(rule: HealthRule, total: int, minimum: int) -> None:
    assert minimum_healthy(rule, total) == minimum
    assert constraints_invalid(rule, total)
    assert max_concurrency(rule, total) == 0
    assert can_start_more(rule, total, healthy_now=total, in_flight=0) == 0
    assert verdict(rule, total, 0, 0, total, 0, last_host_failed=False) == "failed"


def test_fleet_percent_rounds_up_and_concurrency_rounds_down() -> None:
    assert minimum_healthy(HealthRule("FLEET_PERCENT", 40), 9) == 4  # ceil(3.6)
    assert minimum_healthy(HealthRule("FLEET_PERCENT", 95), 10) == 10  # ceil(9.5)
    assert minimum_healthy(HealthRule("FLEET_PERCENT", 50), 10) == 5  # exact stays exact
    assert minimum_healthy(HealthRule("FLEET_PERCENT", 1), 1000) == 10


@pytest.mark.parametrize(
    ("total", "failing_host", "expected"),
    [
        (10, 1, "failed"),
        (10, 5, "failed"),
        (10, 9, "failed"),
        (10, 10, "succeeded"),
        (3, 2, "failed"),
        (3, 3, "succeeded"),
        (2, 1, "failed"),
        (2, 2, "succeeded"),
        (1, 1, "failed"),  # a single host must succeed: at least one success
    ],
)
def test_one_at_a_time_last_instance_rule(total: int, failing_host: int, expected: str) -> None:
    outcomes = [position != failing_host for position in range(1, total + 1)]
    run = simulate(ONE_AT_A_TIME, total, outcomes)
    assert run.verdict() == expected
    assert len(run.outcomes_used) == failing_host  # fails at once, starts nothing more


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        # two at a time, so hosts 1-2, 3-4, ... finish in pairs until the first failure.
        ([False, True, False] + [True] * 7, "failed"),
        ([True] * 9 + [False], "succeeded"),
        ([False] + [True] * 8 + [False], "succeeded"),  # the second failure is the last host
        ([True] * 8 + [False, False], "succeeded"),  # both failures in the final pair
        ([False, False] + [True] * 8, "failed"),  # both failures in the first pair
        ([True] * 8 + [False, True], "succeeded"),
    ],
)
def test_ten_hosts_minimum_eight(outcomes: list[bool], expected: str) -> None:
    assert simulate(HealthRule("HOST_COUNT", 8), 10, outcomes).verdict() == expected


def test_ten_hosts_minimum_eight_keeps_going_one_at_a_time_after_a_failure() -> None:
    rule = HealthRule("HOST_COUNT", 8)
    assert can_start_more(rule, 10, healthy_now=10, in_flight=0) == 2
    assert can_start_more(rule, 10, healthy_now=8, in_flight=1) == 0  # one failed, one busy
    assert can_start_more(rule, 10, healthy_now=9, in_flight=0) == 1
    assert verdict(rule, 10, 1, 1, 8, 0, last_host_failed=False) == "continue"


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([False] * 10, "failed"),
        ([False] * 9 + [True], "succeeded"),
        ([True] + [False] * 9, "succeeded"),
        ([True] * 10, "succeeded"),
    ],
)
def test_all_at_once_needs_one_success(outcomes: list[bool], expected: str) -> None:
    run = simulate(ALL_AT_ONCE, 10, outcomes)
    assert run.verdict() == expected
    assert run.most_in_flight == 10


def test_failure_is_declared_while_other_hosts_are_still_running() -> None:
    # 9 hosts, HOST_COUNT 6, hosts 1-3 in flight: the third failure in the batch leaves
    # six hosts pending that can never start.
    rule = HealthRule("HOST_COUNT", 6)
    assert verdict(rule, 9, 0, 2, 6, 1, last_host_failed=True) == "continue"
    assert verdict(rule, 9, 0, 3, 6, 0, last_host_failed=True) == "failed"
    # Too few possible successes is final even with hosts in flight.
    assert verdict(rule, 9, 0, 4, 0, 5, last_host_failed=True) == "failed"


def test_skipped_hosts_mean_failure() -> None:
    # Nine hosts accounted for out of ten: one was skipped, so not every host was deployed.
    assert verdict(ALL_AT_ONCE, 10, 9, 0, 0, 0, last_host_failed=False) == "failed"
    assert verdict(ALL_AT_ONCE, 10, 8, 0, 0, 1, last_host_failed=False) == "failed"


# --- input checking ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "kind", "value"),
    [
        ({"type": "HOST_COUNT", "value": 0}, "HOST_COUNT", 0),
        ({"type": "FLEET_PERCENT", "value": 99}, "FLEET_PERCENT", 99),
        ({"type": "MOST_CONCURRENCY", "value": 1}, "MOST_CONCURRENCY", 1),
    ],
)
def test_rule_from_config(config: dict[str, object], kind: str, value: int) -> None:
    assert HealthRule.from_config(config) == HealthRule(kind, value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "PERCENT", "value": 5}, "must be one of HOST_COUNT"),
        ({"type": "HOST_COUNT", "value": -1}, "HOST_COUNT must be 0 or more"),
        ({"type": "FLEET_PERCENT", "value": 100}, "FLEET_PERCENT must be between 0 and 99"),
        ({"type": "FLEET_PERCENT", "value": -1}, "FLEET_PERCENT must be between 0 and 99"),
        ({"type": "MOST_CONCURRENCY", "value": 0}, "MOST_CONCURRENCY must be 1 or more"),
        ({"type": "HOST_COUNT", "value": "3"}, "must be an integer"),
        ({"type": "HOST_COUNT", "value": True}, "must be an integer"),
        ({"type": "HOST_COUNT"}, "missing value"),
        ({}, "missing type and value"),
    ],
)
def test_rule_from_config_rejects(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthRule.from_config(config)


def test_inconsistent_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="add up to more than the 10 hosts"):
        verdict(ALL_AT_ONCE, 10, 5, 5, 1, 0, last_host_failed=False)
    with pytest.raises(ValueError, match="failed must not be negative"):
        verdict(ALL_AT_ONCE, 10, 5, -1, 0, 0, last_host_failed=False)
    with pytest.raises(ValueError, match="no host failed"):
        verdict(ALL_AT_ONCE, 10, 10, 0, 0, 0, last_host_failed=True)
    with pytest.raises(ValueError, match="exceed the 10 hosts"):
        can_start_more(ALL_AT_ONCE, 10, healthy_now=10, in_flight=1)
    with pytest.raises(ValueError, match="total must not be negative"):
        minimum_healthy(ALL_AT_ONCE, -1)


# --- scheduling order -------------------------------------------------------------------


def test_order_hosts_by_health_then_name() -> None:
    hosts = [
        ("web-3", "current"),
        ("web-1", "old"),
        ("db-2", "unknown"),
        ("web-2", "unhealthy"),
        ("app-9", "current"),
        ("app-1", "unhealthy"),
        ("db-1", "old"),
    ]
    assert order_hosts(hosts) == ["app-1", "web-2", "db-2", "db-1", "web-1", "app-9", "web-3"]
    assert order_hosts([]) == []


def test_order_hosts_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="'web-1' has health 'sick'"):
        order_hosts([("web-1", "sick")])
    with pytest.raises(ValueError, match="'web-1' is listed twice"):
        order_hosts([("web-1", "old"), ("web-1", "current")])


@given(
    st.lists(
        st.tuples(st.text(max_size=5), st.sampled_from(["unhealthy", "unknown", "old", "current"])),
        unique_by=lambda host: host[0],
    )
)
def test_order_hosts_is_a_sorted_permutation(hosts: list[tuple[str, str]]) -> None:
    ordered = order_hosts(hosts)
    assert sorted(ordered) == sorted(name for name, _ in hosts)
    health = dict(hosts)
    ranks = [["unhealthy", "unknown", "old", "current"].index(health[n]) for n in ordered]
    assert ranks == sorted(ranks)
    for first, second in itertools.pairwise(ordered):
        if health[first] == health[second]:
            assert first < second


# --- properties over whole deployments --------------------------------------------------

rules = st.one_of(
    st.builds(HealthRule, st.just("HOST_COUNT"), st.integers(0, 25)),
    st.builds(HealthRule, st.just("FLEET_PERCENT"), st.integers(0, 99)),
    st.builds(HealthRule, st.just("MOST_CONCURRENCY"), st.integers(1, 5)),
)


@given(rule=rules, total=st.integers(0, 25))
def test_arithmetic_is_consistent(rule: HealthRule, total: int) -> None:
    minimum = minimum_healthy(rule, total)
    if rule.kind == "FLEET_PERCENT":
        assert minimum * 100 >= total * rule.value > (minimum - 1) * 100 or minimum == 0
    if constraints_invalid(rule, total):
        assert max_concurrency(rule, total) == 0
    else:
        assert 1 <= max_concurrency(rule, total) == total - minimum


@given(rule=rules, total=st.integers(0, 25), data=st.data())
def test_simulated_deployment_keeps_the_rules(
    rule: HealthRule, total: int, data: st.DataObject
) -> None:
    minimum = minimum_healthy(rule, total)
    run = Run(rule, total)
    if constraints_invalid(rule, total):
        assert run.verdict() == "failed"
        assert can_start_more(rule, total, run.healthy, 0) == 0
        return
    while (outcome := run.verdict()) == "continue":
        assert run.healthy >= minimum
        run.start_allowed()
        assert 0 < run.in_flight <= max_concurrency(rule, total)
        assert run.healthy >= minimum  # starting hosts never takes healthy below the minimum
        run.finish_one(data.draw(st.booleans(), label="host succeeded"))
    assert run.healthy >= minimum
    if outcome == "succeeded":
        assert run.remaining == run.in_flight == 0
        assert run.succeeded >= max(minimum, 1)
        if run.succeeded == minimum:
            assert run.last_host_failed  # only the last-instance exception reaches the floor
    else:
        assert outcome == "failed"
        assert run.in_flight == 0  # under this schedule, failure is only ever declared idle
        cannot_reach_minimum = run.succeeded + run.remaining < max(minimum, 1)
        rest_cannot_start = run.remaining > 0 and run.healthy <= minimum
        assert cannot_reach_minimum or rest_cannot_start
    assert outcome == documented_outcome(rule, total, _padded(run.outcomes_used, total))


def _padded(outcomes: list[bool], total: int) -> list[bool]:
    """Hosts never started after a failure cannot change the documented outcome."""
    return outcomes + [True] * (total - len(outcomes))
