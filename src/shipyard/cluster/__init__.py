"""Several replicas on one database: who does which shared work.

- ``share``: this replica's part of the work (one sweeper per deployment, one watcher per
  alarm), through leases in the database (``store/leases.py``) spread by rendezvous
  hashing over the live replicas; a dead replica's leases are taken over when they
  expire.
- ``polls``: agents' long polls across replicas: the latest poll of an agent, wherever it
  is held, is the only one that may claim its commands, and a poll held open keeps its
  agent's ``last_seen`` fresh for every replica's sweeper.

On SQLite (one server) the same code runs with one replica, which holds everything.
"""
