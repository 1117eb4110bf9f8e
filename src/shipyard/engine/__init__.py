"""Deployment decisions.

Invariants:
- ``machine.step`` and ``plan`` are pure: no I/O, no clock reads; time is an input;
- ``runner.py`` is the only module here that does I/O (load, step, persist, act);
- terminal deployment states are frozen.
"""
