"""An ECS deployment's target: the group's service (``cluster:service``, the
deployment target id CodeDeploy uses) with its target group pair and the production
and test listeners; and a task set as ``ecsTarget.taskSetsInfo`` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EcsTarget:
    cluster: str
    service: str
    target_groups: tuple[str, ...]  # the pair's two target group names
    prod_listeners: tuple[str, ...]
    test_listeners: tuple[str, ...] = ()

    @property
    def target_id(self) -> str:
        return f"{self.cluster}:{self.service}"

    @classmethod
    def of_group(cls, group: dict[str, Any]) -> EcsTarget:
        """The target a (validated) ECS deployment group names."""
        service = (group.get("ecsServices") or [{}])[0]
        pairs = (group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or [{}]
        pair = pairs[0]
        prod = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
        test = (pair.get("testTrafficRoute") or {}).get("listenerArns") or []
        return cls(
            cluster=str(service.get("clusterName", "")),
            service=str(service.get("serviceName", "")),
            target_groups=tuple(g["name"] for g in pair.get("targetGroups") or []),
            prod_listeners=tuple(prod),
            test_listeners=tuple(test),
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "service": self.service,
            "targetGroups": list(self.target_groups),
            "prodListeners": list(self.prod_listeners),
            "testListeners": list(self.test_listeners),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EcsTarget:
        return cls(
            doc["cluster"],
            doc["service"],
            tuple(doc["targetGroups"]),
            tuple(doc["prodListeners"]),
            tuple(doc.get("testListeners") or ()),
        )


@dataclass(frozen=True)
class TaskSetInfo:
    identifier: str
    desired: int
    pending: int
    running: int
    status: str  # PRIMARY | ACTIVE | DRAINING
    traffic_weight: float  # percent of production traffic now
    target_group: str  # the target group's name
    label: str  # BLUE (the original) | GREEN (the replacement)

    def to_wire(self) -> dict[str, Any]:
        return {
            "identifer": self.identifier,  # (sic): CodeDeploy's own spelling
            "desiredCount": self.desired,
            "pendingCount": self.pending,
            "runningCount": self.running,
            "status": self.status,
            "trafficWeight": self.traffic_weight,
            "targetGroup": {"name": self.target_group},
            "taskSetLabel": self.label,
        }
