"""Stacks: the CloudFormation subset Shipyard answers (templates, change sets, stack
operations run by resource providers against the server's own AWS-shaped APIs).

The template engine (``text``, ``template``, ``intrinsics``, ``parameters``,
``graph``, ``changes``, ``serverless``, ``types``) is pure; ``providers``, ``executor``
and ``api`` do the I/O.
"""
