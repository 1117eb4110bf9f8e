"""The server the API tests share: one real server per test module. The modules' tests
make names of their own (crud_support.unique) or set up their world once, so they can
share it; a test that needs a server of its own asks for ``live_server``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer, start_live_server


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    module = request.module.__name__.rsplit(".", 1)[-1]
    yield from start_live_server(tmp_path_factory.mktemp(module) / "server")


@pytest.fixture(scope="module")
def cd(server: LiveServer) -> Any:
    """A CodeDeploy client of the module's server."""
    return server.client("codedeploy")
