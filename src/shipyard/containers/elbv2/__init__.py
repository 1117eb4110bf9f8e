"""The embedded Elastic Load Balancing v2 API: load balancers as HAProxy processes.

``api`` answers the Query protocol on the server's endpoint; ``*_ops`` are the
operations over the store (shipyard.store.elbv2); ``balancers`` keeps each load
balancer's HAProxy (``process``, ``runtime``) in line with the store through the
configuration ``haproxy_config`` renders from ``topology``; ``seam`` gives the embedded
ECS the ``containers.targets.TargetGroups`` it registers tasks with.
"""
