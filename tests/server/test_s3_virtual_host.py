"""Virtual-hosted bucket addressing in the built-in S3 store (``Host: <bucket>.<domain>``),
as the stock CodeDeploy agent's S3 client uses when it reaches the server by name.

boto3 addresses the buckets virtual-hosted under ``shipyard.localhost`` and reaches
the server through it as an HTTP proxy, so no name has to resolve: the requests carry
the virtual host in their Host header, as they would through wildcard DNS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from shipyard.bundlestore.api import bucket_domain
from shipyard.config import ServerConfig
from tests.conftest import LiveServer, start_live_server

DOMAIN = "shipyard.localhost"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from start_live_server(tmp_path_factory.mktemp("vhost") / "server", bucket_domain=DOMAIN)


def virtual_client(server: LiveServer, access_key_id: str, secret: str) -> Any:
    port = server.url.rpartition(":")[2]
    return boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{port}",
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=BotoConfig(
            s3={"addressing_style": "virtual"},
            proxies={"http": server.url},
            retries={"max_attempts": 1},
        ),
    )


def test_buckets_answer_under_their_own_host_name(server: LiveServer) -> None:
    captured: list[str] = []
    s3 = virtual_client(server, server.access_key_id, server.secret_access_key)
    s3.meta.events.register(
        "before-send.s3", lambda request, **_: captured.append(urlsplit(request.url).netloc)
    )
    s3.create_bucket(Bucket="bundles")
    s3.put_object(Bucket="bundles", Key="app/v1 +1.zip", Body=b"zip bytes")
    assert s3.get_object(Bucket="bundles", Key="app/v1 +1.zip")["Body"].read() == b"zip bytes"
    listed = s3.list_objects_v2(Bucket="bundles", Prefix="app/")
    assert [o["Key"] for o in listed["Contents"]] == ["app/v1 +1.zip"]
    assert set(captured) == {f"bundles.{DOMAIN}:{server.url.rpartition(':')[2]}"}

    # The same objects, path-style on the plain endpoint.
    path_style = server.client("s3")
    assert path_style.get_object(Bucket="bundles", Key="app/v1 +1.zip")["Body"].read() == (
        b"zip bytes"
    )
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="nosuchbucket", Key="app/v1 +1.zip")
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"


def test_a_host_outside_the_domain_is_path_style(server: LiveServer) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="other")
    s3.put_object(Bucket="other", Key="k", Body=b"v")
    port = server.url.rpartition(":")[2]
    elsewhere = boto3.client(
        "s3",
        endpoint_url=f"http://example.test:{port}",
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=BotoConfig(s3={"addressing_style": "path"}, proxies={"http": server.url}),
    )
    assert elsewhere.get_object(Bucket="other", Key="k")["Body"].read() == b"v"


def test_the_domain_defaults_to_the_public_url_host(tmp_path: Path) -> None:
    def domain(public_url: str = "", bucket_domain_setting: str = "") -> str:
        config = ServerConfig(
            data_dir=tmp_path, public_url=public_url, bucket_domain=bucket_domain_setting
        )
        return bucket_domain(config)

    assert domain() == ""
    assert domain(public_url="https://Deploy.Example.com:8420/") == "deploy.example.com"
    assert domain(public_url="https://10.0.0.5:8420") == ""  # an address has no subdomains
    assert domain(public_url="https://[::1]:8420") == ""
    assert domain("https://a.example.com", bucket_domain_setting="s3.Example.com.") == (
        "s3.example.com"
    )
