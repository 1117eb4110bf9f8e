"""A whole fleet on one machine: ``fleet`` runs real agent processes, each with its own
filesystem view; ``run`` is ``shipyard demo`` (embedded server, fleet, the sample app in
``app/``)."""
