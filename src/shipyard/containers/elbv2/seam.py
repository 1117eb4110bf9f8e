"""The ``containers.targets.TargetGroups`` seam over the embedded ELBv2: what the
embedded ECS registers its tasks with. Construct it with the server's
``LoadBalancers``: ``EmbeddedTargetGroups(services.load_balancers)`` (None when no
HAProxy is installed). Safe to call from any thread (it blocks for the HAProxy change:
milliseconds for targets). It changes the same store and HAProxy processes the API does, under the
same lock, so API callers see what ECS did and the other way round."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shipyard.containers.elbv2 import target_ops
from shipyard.containers.elbv2.balancers import LoadBalancers
from shipyard.containers.targets import Target, TargetState
from shipyard.store import elbv2 as store


class EmbeddedTargetGroups:
    def __init__(self, balancers: LoadBalancers) -> None:
        self._balancers = balancers
        self._db = balancers.db

    def exists(self, target_group_arn: str) -> bool:
        with self._db.tx() as conn:
            return store.get(conn, store.TARGET_GROUPS, target_group_arn) is not None

    def register(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        with self._balancers.lock, self._db.tx() as conn:
            target_ops.register(self._balancers, conn, target_group_arn, targets)

    def deregister(self, target_group_arn: str, targets: Sequence[Target]) -> None:
        """Targets not registered (any more) are skipped: stopping a task twice, or one
        whose registration never happened, is no error here."""
        with self._balancers.lock, self._db.tx() as conn:
            known = {Target(row.address, row.port) for row in store.targets(conn, target_group_arn)}
            present = [target for target in targets if target in known]
            if present or not self.exists(target_group_arn):
                target_ops.deregister(self._balancers, conn, target_group_arn, present)

    def health(self, target_group_arn: str) -> Mapping[Target, TargetState]:
        found = target_ops.health(self._balancers, target_group_arn)
        return {target: health.state for target, health in found.items()}
