"""The I/O half of the engine: load, step, persist, act.

``core.Runner`` is the one way to change a deployment (``apply``: lock, step the pure
machine, save, queue what the actions ask for, act after the commit). ``agents`` serves
the agent protocol (long polls, acknowledgements, specifications, results),
``sweeper`` feeds time in, ``traffic_worker`` runs the server's own traffic steps in
threads, ``snapshots`` reads what the pure builders need.
"""
