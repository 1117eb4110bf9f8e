"""An appspec revision in the built-in store, read as text (Lambda and ECS)."""

from __future__ import annotations

from typing import Any

from shipyard.bundlestore.urls import BundleStoreError, read_bundle
from shipyard.errors import ApiError, MissingRevision
from shipyard.platforms.appspec_doc import MAX_APPSPEC_BYTES
from shipyard.platforms.appspec_revision import ReadAppSpec
from shipyard.server.context import Call, Services


def reader(call: Call) -> ReadAppSpec:
    return store_reader(call.services)


def store_reader(services: Services) -> ReadAppSpec:
    def read(loc: dict[str, Any]) -> str | None:
        try:
            data = read_bundle(services, loc, MAX_APPSPEC_BYTES)
        except BundleStoreError as exc:
            raise MissingRevision(f"The appspec could not be read: {exc}") from None
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise ApiError("InvalidRevisionException", "The appspec is not UTF-8 text") from None

    return read
