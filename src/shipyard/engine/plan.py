"""Minimum-healthy-hosts arithmetic for in-place deployments (pure: no I/O, no clock).

The state machine asks four questions of this module: may the deployment start at all
(``constraints_invalid``), how many more hosts may it start now (``can_start_more``), is it
finished (``verdict``), and in which order are hosts scheduled (``order_hosts``).

Decisions (the reference, §4.1 and §4.2, leaves these open or implicit):

- **Counting healthy hosts.** Every host counts as healthy when the deployment starts,
  whatever happened to it before (the documented examples all assume this). A host in
  flight counts as not healthy, a host whose deployment failed is unhealthy, a host whose
  deployment succeeded is healthy again. So at any moment
  ``healthy = total - failed - in_flight``. The documented exception for a group that
  *starts* below its minimum therefore never arises.
- **The minimum** is fixed once from the fleet size: HOST_COUNT is absolute, FLEET_PERCENT
  is ``ceil(total * value / 100)``, and MOST_CONCURRENCY (what GetDeploymentConfig returns
  for CodeDeployDefault.OneAtATime, value 1) keeps all but ``value`` hosts healthy:
  ``max(total - value, 0)``.
- **Scheduling.** A host may start only while healthy exceeds the minimum, so at most
  ``total - minimum`` are in flight, and every failure shrinks that window by one. From
  this follows the invariant ``failed + in_flight <= total - minimum``.
- **The verdict** is derived from counts alone. The deployment fails as soon as success
  has become impossible: when even with every outstanding host succeeding fewer than
  ``max(minimum, 1)`` would succeed (the minimum, and "at least one success" even when
  the minimum is 0), or when hosts remain that can never start because healthy can no
  longer exceed the minimum (``total - failed <= minimum``), or when some host was
  skipped (success needs every host deployed). It succeeds once no host is pending or in
  flight.
- **The last-instance rule generalises by itself.** Healthy reaching the minimum is fatal
  only because the hosts still pending could never be started; when the failure that
  brings healthy down to the minimum is on the last host, the deployment has
  ``total - (total - minimum) = minimum`` successes and succeeds. This reproduces
  "10 instances, minimum 9: a failure on the last instance still succeeds" and
  "10 instances, minimum 8: a second failure fails unless the last instance is the second
  failure", and it also holds for two failures landing in the same final batch. It never
  overrides "at least one success": OneAtATime on a single host fails when that host fails.
  The ``last_host_failed`` flag of ``verdict`` is therefore only checked for consistency.
- **Invalid constraints** (HEALTH_CONSTRAINTS_INVALID) means no host could ever start:
  ``minimum >= total``, e.g. 10 hosts at 95%, 9 hosts with HOST_COUNT 9, or any positive
  FLEET_PERCENT on a single host (HalfAtATime on one host rounds up to a minimum of 1).
  OneAtATime is always valid (minimum ``total - 1``), and so is AllAtOnce (HOST_COUNT 0)
  for ``total >= 1``. A fleet of 0 hosts is reported as invalid here; callers report
  NO_INSTANCES before asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

HOST_COUNT = "HOST_COUNT"
FLEET_PERCENT = "FLEET_PERCENT"
MOST_CONCURRENCY = "MOST_CONCURRENCY"
RULE_KINDS = (HOST_COUNT, FLEET_PERCENT, MOST_CONCURRENCY)


class Verdict(StrEnum):
    """What the counts say about a deployment's hosts."""

    CONTINUE = "continue"
    FAILED = "failed"
    SUCCEEDED = "succeeded"


CONTINUE, FAILED, SUCCEEDED = Verdict.CONTINUE, Verdict.FAILED, Verdict.SUCCEEDED

# Scheduling priority per §4.2: repair broken hosts first, leave up-to-date ones for last.
HEALTH_ORDER = ("unhealthy", "unknown", "old", "current")


@dataclass(frozen=True)
class HealthRule:
    """A deployment config's ``minimumHealthyHosts``; always valid once constructed."""

    kind: str
    value: int

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(
                f"minimum healthy hosts type must be one of {', '.join(RULE_KINDS)}, "
                f"not {self.kind!r}"
            )
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise ValueError(f"minimum healthy hosts value must be an integer, not {self.value!r}")
        if self.kind == HOST_COUNT and self.value < 0:
            raise ValueError(f"HOST_COUNT must be 0 or more, not {self.value}")
        if self.kind == FLEET_PERCENT and not 0 <= self.value <= 99:
            raise ValueError(f"FLEET_PERCENT must be between 0 and 99, not {self.value}")
        if self.kind == MOST_CONCURRENCY and self.value < 1:
            raise ValueError(f"MOST_CONCURRENCY must be 1 or more, not {self.value}")

    @classmethod
    def from_config(cls, minimum_healthy_hosts: dict[str, Any]) -> HealthRule:
        """Build from ``{"type": ..., "value": ...}`` as stored in a deployment config."""
        if not isinstance(minimum_healthy_hosts, dict):
            raise ValueError("minimum healthy hosts must be an object with type and value")
        missing = [key for key in ("type", "value") if key not in minimum_healthy_hosts]
        if missing:
            raise ValueError(f"minimum healthy hosts is missing {' and '.join(missing)}")
        return cls(kind=minimum_healthy_hosts["type"], value=minimum_healthy_hosts["value"])


def minimum_healthy(rule: HealthRule, total: int) -> int:
    """How many of ``total`` hosts must stay healthy (and, at the end, have succeeded)."""
    _check_non_negative(total=total)
    if rule.kind == HOST_COUNT:
        return rule.value
    if rule.kind == FLEET_PERCENT:
        return -(-total * rule.value // 100)  # fractional hosts round up
    return max(total - rule.value, 0)


def constraints_invalid(rule: HealthRule, total: int) -> bool:
    """True when not a single host could start without breaking the minimum."""
    return minimum_healthy(rule, total) >= total


def max_concurrency(rule: HealthRule, total: int) -> int:
    """The most hosts ever in flight at once: ``total - minimum`` (0 when invalid)."""
    if constraints_invalid(rule, total):
        return 0
    return total - minimum_healthy(rule, total)


def can_start_more(rule: HealthRule, total: int, healthy_now: int, in_flight: int) -> int:
    """How many more hosts may start now, each taking one healthy host out of service.

    ``healthy_now`` excludes the hosts in flight. The caller caps the answer by the number
    of hosts still pending.
    """
    _check_non_negative(total=total, healthy_now=healthy_now, in_flight=in_flight)
    if healthy_now + in_flight > total:
        raise ValueError(
            f"{healthy_now} healthy and {in_flight} in flight exceed the {total} hosts"
        )
    headroom = healthy_now - minimum_healthy(rule, total)
    window = max_concurrency(rule, total) - in_flight
    return max(0, min(headroom, window))


def verdict(
    rule: HealthRule,
    total: int,
    succeeded: int,
    failed: int,
    remaining: int,
    in_flight: int,
    last_host_failed: bool,
) -> Verdict:
    """``continue``, ``failed`` or ``succeeded`` for the current counts.

    ``remaining`` counts hosts not started yet. Hosts of ``total`` in none of the four
    counts were skipped. ``last_host_failed`` says the host that finished last failed.
    """
    _check_non_negative(
        total=total, succeeded=succeeded, failed=failed, remaining=remaining, in_flight=in_flight
    )
    counted = succeeded + failed + remaining + in_flight
    if counted > total:
        raise ValueError(
            f"{succeeded} succeeded, {failed} failed, {remaining} remaining and "
            f"{in_flight} in flight add up to more than the {total} hosts"
        )
    if last_host_failed and failed == 0:
        raise ValueError("the last host cannot have failed when no host failed")
    skipped = total - counted
    minimum = minimum_healthy(rule, total)
    best_possible_successes = total - failed  # every host still pending or running succeeds
    if skipped or best_possible_successes < max(minimum, 1):
        return FAILED
    if remaining and total - failed <= minimum:
        return FAILED  # healthy can never exceed the minimum again: the rest cannot start
    if remaining or in_flight:
        return CONTINUE
    return SUCCEEDED


def order_hosts(hosts: list[tuple[str, str]]) -> list[str]:
    """Host names in scheduling order: unhealthy, unknown, old, current; by name within."""
    rank = {health: position for position, health in enumerate(HEALTH_ORDER)}
    seen: set[str] = set()
    for name, health in hosts:
        if health not in rank:
            raise ValueError(
                f"host {name!r} has health {health!r}; expected one of {', '.join(HEALTH_ORDER)}"
            )
        if name in seen:
            raise ValueError(f"host {name!r} is listed twice")
        seen.add(name)
    return [name for name, _ in sorted(hosts, key=lambda host: (rank[host[1]], host[0]))]


def _check_non_negative(**counts: int) -> None:
    for label, count in counts.items():
        if count < 0:
            raise ValueError(f"{label} must not be negative, got {count}")
