"""moto's server on a loopback port, as the AWS the "aws" backends talk to."""

from __future__ import annotations

import os
from collections.abc import Iterator

from moto.server import ThreadedMotoServer

MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto"}


def moto_endpoint() -> Iterator[str]:
    """Yields the server's URL, with moto's keys in the environment meanwhile (the "aws"
    backends read their keys from the AWS chain)."""
    saved = {name: os.environ.get(name) for name in MOTO_KEYS}
    os.environ.update(MOTO_KEYS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
