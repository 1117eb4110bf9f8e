"""The ``shipyard`` command line.

``main`` builds the parser and runs a subcommand; ``subcommands`` and ``alarms`` talk to
the server through its public API (``client``); ``progress`` renders what a deployment
does, ``pack`` zips a source directory. The server and agent entry points are imported
only when chosen, so ``shipyard agent`` loads none of the client code.
"""
