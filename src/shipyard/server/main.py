"""Build the server's services, bootstrap the admin key, and serve."""

from __future__ import annotations

import configparser
import functools
import os
import time
from pathlib import Path

import uvicorn

from shipyard.config import ServerConfig
from shipyard.engine.runner import Runner
from shipyard.server.app import create_app
from shipyard.server.bundle_urls import bundle_url
from shipyard.server.context import Services
from shipyard.store import credentials, open_database


def build_services(config: ServerConfig) -> Services:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(config.database_url)
    clock = time.time
    runner = Runner(config, db, clock)
    services = Services(config=config, db=db, runner=runner, clock=clock)
    # Agents get a ready-to-GET URL for S3 bundles, so they never need S3 keys.
    runner.bundle_url = functools.partial(bundle_url, services)
    return services


def ensure_admin_credentials(services: Services) -> Path:
    """On first start, issue the admin key and write ``DATA_DIR/credentials``."""
    path = services.config.data_dir / "credentials"
    with services.db.tx() as conn:
        if credentials.has_admin(conn) and path.exists():
            return path
        key_id, secret = credentials.issue(conn, "admin", "admin", services.clock())
    parser = configparser.ConfigParser()
    parser["default"] = {
        "aws_access_key_id": key_id,
        "aws_secret_access_key": secret,
        "region": services.config.region,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        parser.write(out)
    return path


def serve(config: ServerConfig) -> None:
    services = build_services(config)
    ensure_admin_credentials(services)
    app = create_app(services)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        ssl_certfile=config.tls_cert or None,
        ssl_keyfile=config.tls_key or None,
        access_log=False,
    )
