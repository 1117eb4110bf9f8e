"""The embedded container service: the ECS and ELBv2 APIs on real local parts.

`ecs/` runs task sets as containers through the Docker Engine API (Podman's API
service by default); `elbv2/` runs each load balancer as an HAProxy process changed
through its runtime API. The two meet at one seam, `targets.TargetGroups`: the ECS
side registers each task's host port in its target group and deregisters it
(draining first) before it stops the task.
"""
