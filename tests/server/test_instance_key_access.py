"""What an instance key may read from the built-in bundle store (issue 10, finding 4).

The attack: a host's instance key (from its agent config) used with an ordinary S3
client, the way the stock CodeDeploy agent downloads bundles, to read an object it was
never deployed (``secret-bucket/db/prod-db-password.txt``), list buckets and objects, and
write. Only the bundle of a deployment in progress on that host may be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, start_live_server
from tests.support import call_extension

ROLE = "arn:aws:iam::000000000000:role/shipyard"
PASSWORD = b"hunter2-prod"


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[LiveServer]:
    with contextlib.contextmanager(start_live_server)(tmp_path / "server", database=db_url) as s:
        yield s


def make_bundle() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", "version: 0.0\nos: linux\n")
    return buffer.getvalue()


BUNDLE = make_bundle()  # once: a zip records the time it was written


def instance_s3(server: LiveServer, name: str) -> Any:
    """An S3 client signing with the instance key issued to host ``name``."""
    arn = f"arn:aws:iam::000000000000:user/{name}"
    cd = server.client()
    cd.register_on_premises_instance(instanceName=name, iamUserArn=arn)
    cd.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "group", "Value": name}]
    )
    keys = call_extension(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    as_host = dataclasses.replace(
        server, access_key_id=keys["accessKeyId"], secret_access_key=keys["secretAccessKey"]
    )
    return as_host.client("s3")


def deploy(server: LiveServer, name: str, location: dict[str, str]) -> str:
    """A deployment in progress to host ``name`` (its agent never polls, so it stays)."""
    cd = server.client()
    cd.create_application(applicationName=name)
    cd.create_deployment_group(
        applicationName=name,
        deploymentGroupName=name,
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "group", "Value": name, "Type": "KEY_AND_VALUE"}],
    )
    revision = {"revisionType": "S3", "s3Location": {**location, "bundleType": "zip"}}
    created = cd.create_deployment(
        applicationName=name, deploymentGroupName=name, revision=revision
    )
    return str(created["deploymentId"])


def denied(attempt: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        attempt()
    return str(info.value.response["Error"]["Code"])


def test_an_instance_key_reads_its_own_bundle_and_nothing_else(server: LiveServer) -> None:
    admin = server.client("s3")
    for bucket in ("bundles", "secret-bucket"):
        admin.create_bucket(Bucket=bucket)
    admin.put_object(Bucket="secret-bucket", Key="db/prod-db-password.txt", Body=PASSWORD)
    mine = admin.put_object(Bucket="bundles", Key="web/v1.zip", Body=BUNDLE)
    admin.put_object(Bucket="bundles", Key="db/v1.zip", Body=BUNDLE)
    web = instance_s3(server, "web-1")
    instance_s3(server, "db-1")
    deployment = deploy(server, "web-1", {"bucket": "bundles", "key": "web/v1.zip"})
    deploy(server, "db-1", {"bucket": "bundles", "key": "db/v1.zip"})

    # Its own deployment's bundle: yes.
    assert web.get_object(Bucket="bundles", Key="web/v1.zip")["Body"].read() == BUNDLE
    assert web.head_object(Bucket="bundles", Key="web/v1.zip")["ContentLength"] == len(BUNDLE)
    # Anything else: AccessDenied, whether the object exists or not.
    attempts: list[Callable[[], Any]] = [
        lambda: web.get_object(Bucket="secret-bucket", Key="db/prod-db-password.txt"),
        lambda: web.head_object(Bucket="secret-bucket", Key="db/prod-db-password.txt"),
        lambda: web.get_object(Bucket="bundles", Key="db/v1.zip"),  # another host's
        lambda: web.get_object(Bucket="bundles", Key="web/v2.zip"),
        lambda: web.get_object(Bucket="bundles", Key="web/v1.zip", VersionId=mine["VersionId"]),
        lambda: web.list_buckets(),
        lambda: web.list_objects_v2(Bucket="secret-bucket"),
        lambda: web.list_objects(Bucket="bundles"),
        lambda: web.put_object(Bucket="bundles", Key="web/v1.zip", Body=b"evil"),
        lambda: web.put_object(Bucket="secret-bucket", Key="new.txt", Body=b"evil"),
        lambda: web.delete_object(Bucket="bundles", Key="web/v1.zip"),
        lambda: web.create_multipart_upload(Bucket="bundles", Key="web/v1.zip"),
        lambda: web.create_bucket(Bucket="mine"),
    ]
    codes = [denied(attempt) for attempt in attempts]
    # HEAD answers carry no body, so botocore names the error by its status.
    assert codes == ["AccessDenied", "403"] + ["AccessDenied"] * (len(attempts) - 2)
    assert admin.get_object(Bucket="bundles", Key="web/v1.zip")["Body"].read() == BUNDLE

    # Once the deployment is over, its bundle is closed to the host too.
    server.client().stop_deployment(deploymentId=deployment)
    assert denied(lambda: web.get_object(Bucket="bundles", Key="web/v1.zip")) == "AccessDenied"


def test_a_pinned_revision_opens_only_its_version(server: LiveServer) -> None:
    admin = server.client("s3")
    admin.create_bucket(Bucket="bundles")
    first = admin.put_object(Bucket="bundles", Key="app.zip", Body=BUNDLE)["VersionId"]
    admin.put_object(Bucket="bundles", Key="app.zip", Body=b"a later upload, not deployed")
    host = instance_s3(server, "web-1")
    deploy(server, "web-1", {"bucket": "bundles", "key": "app.zip", "version": first})
    pinned = host.get_object(Bucket="bundles", Key="app.zip", VersionId=first)
    assert pinned["Body"].read() == BUNDLE
    assert denied(lambda: host.get_object(Bucket="bundles", Key="app.zip")) == "AccessDenied"
