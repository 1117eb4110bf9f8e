"""Ready-to-GET bundle URLs for agents, and a check that a revision's bundle exists.

Agents hold no S3 keys. For S3 revisions the server hands them a presigned URL instead:
signed with the server's internal, read-only "bundle-reader" key when the built-in store
holds the bundle, or with the configured keys of an external S3-compatible endpoint.

``s3_location`` may be the API's form (``bucket``, ``key``, ``version``, ``eTag``) or the
deployment specification's (``Bucket``, ``Key``, ``Version``, ``ETag``).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from shipyard import sigv4
from shipyard.bundlestore.auth import presign_url
from shipyard.bundlestore.disk import BundleStore, S3Error
from shipyard.errors import ShipyardError
from shipyard.server.context import Services
from shipyard.store import credentials

INTERNAL_PRINCIPAL = ("internal", "bundle-reader")
EXTERNAL_HEAD_TIMEOUT = 5.0


class BundleStoreError(ShipyardError):
    """The external bundle store could not be asked (unreachable, refused our keys...)."""


def bundle_url(services: Services, s3_location: dict[str, Any], expires: int = 3600) -> str:
    """An HTTP(S) URL that GETs the bundle without credentials for ``expires`` seconds."""
    return _presigned(services, s3_location, "GET", expires)


def head_bundle(services: Services, s3_location: dict[str, Any]) -> dict[str, Any] | None:
    """``{"size", "etag", "version"}`` of the bundle (etag without quotes), None if missing.

    The built-in store is read directly. An external endpoint is asked with a presigned
    HEAD (up to 5 s); failures other than "not found" raise BundleStoreError.
    """
    bucket, key, version = _location(s3_location)
    if services.config.s3_endpoint:
        return _head_external(services, s3_location)
    store = BundleStore(services.config.data_dir / "bundles", services.clock)
    try:
        found = store.get(bucket, key, version)
    except S3Error:  # no such bucket, key or version, or a malformed version id
        return None
    return {"size": found.size, "etag": found.etag, "version": found.version_id}


def bundle_in_store(services: Services, s3_location: dict[str, Any]) -> bool | None:
    """Whether the built-in store holds the bundle; None with an external store, which
    is not asked when a deployment is created (it may be slow or unreachable)."""
    if services.config.s3_endpoint:
        return None
    return head_bundle(services, s3_location) is not None


def _location(s3_location: dict[str, Any]) -> tuple[str, str, str | None]:
    def pick(*names: str) -> Any:
        return next((s3_location[n] for n in names if s3_location.get(n)), None)

    bucket, key = pick("bucket", "Bucket"), pick("key", "Key")
    if not bucket or not key:
        raise ValueError("an S3 location needs a bucket and a key")
    return str(bucket), str(key), pick("version", "Version")


def _presigned(services: Services, s3_location: dict[str, Any], method: str, expires: int) -> str:
    bucket, key, version = _location(s3_location)
    config = services.config
    if config.s3_endpoint:
        creds = sigv4.Credentials(config.s3_access_key_id, config.s3_secret_access_key)
        endpoint = config.s3_endpoint
    else:
        creds = _internal_credentials(services)
        endpoint = config.url
    return presign_url(
        creds,
        endpoint=endpoint,
        bucket=bucket,
        key=key,
        region=config.region,
        now=services.clock(),
        expires=expires,
        method=method,
        version_id=version,
    )


def _internal_credentials(services: Services) -> sigv4.Credentials:
    """The server's own read-only key: issued on first use, then reused (the oldest wins)."""
    kind, name = INTERNAL_PRINCIPAL
    box = services.db.secret_box
    with services.db.tx() as conn:
        key_id, secret = credentials.internal_key(conn, box, kind, name, services.clock())
    return sigv4.Credentials(key_id, secret)


def read_bundle(services: Services, s3_location: dict[str, Any], limit: int) -> bytes | None:
    """The bundle's bytes (at most ``limit``: more raises BundleStoreError), None if
    missing; from the built-in store, or by a presigned GET from an external one."""
    bucket, key, version = _location(s3_location)
    if not services.config.s3_endpoint:
        store = BundleStore(services.config.data_dir / "bundles", services.clock)
        try:
            found = store.get(bucket, key, version)
        except S3Error:
            return None
        if found.size > limit:
            raise BundleStoreError(f"s3://{bucket}/{key} is larger than {limit} bytes")
        return found.path.read_bytes()
    url = _presigned(services, s3_location, "GET", 60)
    try:
        with urllib.request.urlopen(url, timeout=EXTERNAL_HEAD_TIMEOUT) as response:
            data: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise BundleStoreError(
            f"bundle store answered {exc.code} for s3://{bucket}/{key}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise BundleStoreError(f"bundle store unreachable: {exc}") from None
    if len(data) > limit:
        raise BundleStoreError(f"s3://{bucket}/{key} is larger than {limit} bytes")
    return data


def _head_external(services: Services, s3_location: dict[str, Any]) -> dict[str, Any] | None:
    url = _presigned(services, s3_location, "HEAD", 60)
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=EXTERNAL_HEAD_TIMEOUT) as response:
            headers = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise BundleStoreError(
            f"bundle store at {services.config.s3_endpoint} answered {exc.code}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise BundleStoreError(
            f"bundle store at {services.config.s3_endpoint} unreachable: {exc}"
        ) from None
    return {
        "size": int(headers.get("content-length", "0")),
        "etag": headers.get("etag", "").strip('"'),
        "version": headers.get("x-amz-version-id"),
    }
