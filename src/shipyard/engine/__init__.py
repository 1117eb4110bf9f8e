"""Deployment decisions, pure: no I/O, no clock reads; time is an input.

``machine.step(state, input, now)`` applies one input (``messages``) and lets the
deployment's strategy (``strategies``: in place, blue/green, traffic shift) decide the
next move, moving hosts with ``hosts`` and the deployment with ``transitions``. ``plan``
is the minimum-healthy-hosts arithmetic, ``schedule`` the canary/linear traffic-shift
schedule; ``launch``, ``rollback`` and ``outdated`` build new deployments from
snapshots the runner reads. Terminal deployment states are frozen. The I/O half lives
in ``shipyard.runner``; tests/test_layering.py keeps this package free of I/O imports.
"""
