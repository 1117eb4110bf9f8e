"""Target groups in this process's memory: the ECS side's tests, and the server's
default until the ELBv2 implementation is wired in (server/main.py, `_target_groups`).

A registered target starts `initial`. Each `health()` call probes the targets that are
not yet healthy (and re-probes healthy ones) with `probe`: by default a real TCP
connection to the target's address and port, so "healthy" means something listens there.
With `probe=None` a target simply turns healthy on the first `health()` after its
registration. `deregister` makes a target `draining` for `drain_seconds` (measured on
`clock`), after which it is gone from `health()`; a drain of 0 removes it at the next
call. Groups exist only once `create` names them, so unknown ARNs are refused as ELBv2
would refuse them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from shipyard.containers.targets import Target, TargetState

Probe = Callable[[Target], bool]


def tcp_probe(target: Target, timeout: float = 0.5) -> bool:
    """Whether something accepts a TCP connection at the target."""
    try:
        with socket.create_connection((target.address, target.port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class _Entry:
    state: TargetState
    drained_at: float = 0.0  # when a draining target is gone


class MemoryTargetGroups:
    def __init__(
        self,
        *,
        probe: Probe | None = tcp_probe,
        drain_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self.drain_seconds = drain_seconds
        self._clock = clock
        self._groups: dict[str, dict[Target, _Entry]] = {}
        self._lock = threading.Lock()

    def create(self, target_group_arn: str) -> None:
        with self._lock:
            self._groups.setdefault(target_group_arn, {})

    def delete(self, target_group_arn: str) -> None:
        with self._lock:
            self._groups.pop(target_group_arn, None)

    # ---- the TargetGroups protocol ------------------------------------------------------

    def exists(self, target_group_arn: str) -> bool:
        with self._lock:
            return target_group_arn in self._groups

    def register(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        with self._lock:
            group = self._group(target_group_arn)
            for target in targets:
                entry = group.get(target)
                if entry is None or entry.state is TargetState.DRAINING:
                    group[target] = _Entry(TargetState.INITIAL)

    def deregister(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        with self._lock:
            group = self._group(target_group_arn)
            until = self._clock() + self.drain_seconds
            for target in targets:
                entry = group.get(target)
                if entry is not None and entry.state is not TargetState.DRAINING:
                    group[target] = _Entry(TargetState.DRAINING, until)

    def health(self, target_group_arn: str) -> Mapping[Target, TargetState]:
        with self._lock:
            group = self._group(target_group_arn)
            now = self._clock()
            for target, entry in list(group.items()):
                if entry.state is TargetState.DRAINING and entry.drained_at <= now:
                    del group[target]
            checking = [t for t, e in group.items() if e.state is not TargetState.DRAINING]
        # Probes run outside the lock: a slow one must not hold up registrations.
        verdicts = {t: self._probe(t) if self._probe else True for t in checking}
        with self._lock:
            for target, ok in verdicts.items():
                current = group.get(target)
                if current is not None and current.state is not TargetState.DRAINING:
                    current.state = TargetState.HEALTHY if ok else _failed(current.state)
            return {target: entry.state for target, entry in group.items()}

    def _group(self, arn: str) -> dict[Target, _Entry]:
        group = self._groups.get(arn)
        if group is None:
            raise KeyError(f"target group {arn} does not exist")
        return group


def _failed(state: TargetState) -> TargetState:
    """A target that never answered stays `initial`; one that answered before is
    `unhealthy` now."""
    return TargetState.INITIAL if state is TargetState.INITIAL else TargetState.UNHEALTHY
