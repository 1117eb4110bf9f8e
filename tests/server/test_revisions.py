"""Application revisions: register, get, batch get, list with filters and sorting."""

from __future__ import annotations

import hashlib
from typing import Any

from shipyard.store import resources
from tests.conftest import LiveServer
from tests.server.crud_support import ROLE_ARN, aws_cli, error_code, raw_error, unique


def s3(key: str, bucket: str = "bundles", **extra: str) -> dict[str, Any]:
    return {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key, **extra}}


def new_app(cd: Any, platform: str = "Server") -> str:
    name = unique("app")
    cd.create_application(applicationName=name, computePlatform=platform)
    return name


def test_register_and_get(cd: Any) -> None:
    app = new_app(cd)
    revision = s3("v1.zip", bundleType="zip", eTag="abc", version="7")
    cd.register_application_revision(applicationName=app, revision=revision, description="first")
    got = cd.get_application_revision(applicationName=app, revision=revision)
    assert got["applicationName"] == app
    assert got["revision"] == revision
    info = got["revisionInfo"]
    assert info["description"] == "first"
    assert info["deploymentGroups"] == []
    assert "registerTime" in info
    assert "firstUsedTime" not in info


def test_identity_ignores_bundle_type_and_etag(cd: Any) -> None:
    app = new_app(cd)
    cd.register_application_revision(applicationName=app, revision=s3("a.zip", bundleType="zip"))
    cd.register_application_revision(
        applicationName=app, revision=s3("a.zip", bundleType="tgz", eTag="e1")
    )
    listed = cd.list_application_revisions(applicationName=app)["revisions"]
    assert listed == [s3("a.zip", bundleType="tgz", eTag="e1")]
    # A different object version is a different revision.
    cd.register_application_revision(applicationName=app, revision=s3("a.zip", version="2"))
    assert len(cd.list_application_revisions(applicationName=app)["revisions"]) == 2


def test_register_errors(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    assert error_code(
        cd.register_application_revision, applicationName=unique("missing"), revision=s3("k")
    ) == ("ApplicationDoesNotExistException")
    bad_bundle = s3("k", bundleType="rar")
    assert error_code(
        cd.register_application_revision, applicationName=app, revision=bad_bundle
    ) == ("InvalidRevisionException")
    assert error_code(
        cd.register_application_revision,
        applicationName=app,
        revision={"revisionType": "GitHub", "gitHubLocation": {"repository": "no-slash"}},
    ) == ("InvalidRevisionException")
    assert error_code(
        cd.register_application_revision,
        applicationName=app,
        revision=s3("k"),
        description="d" * 257,
    ) == ("DescriptionTooLongException")
    # String revisions belong to Lambda applications.
    string_revision = {"revisionType": "String", "string": {"content": "version: 0.0"}}
    assert error_code(
        cd.register_application_revision, applicationName=app, revision=string_revision
    ) == ("InvalidRevisionException")
    assert raw_error(server, "RegisterApplicationRevision", {"applicationName": app}) == (
        "RevisionRequiredException"
    )
    assert raw_error(
        server, "RegisterApplicationRevision", {"applicationName": app, "revision": "s3://x"}
    ) == ("InvalidRevisionException")


def test_get_missing_revision(cd: Any) -> None:
    app = new_app(cd)
    assert error_code(cd.get_application_revision, applicationName=app, revision=s3("nope")) == (
        "RevisionDoesNotExistException"
    )


def test_appspec_content_is_found_by_sha256(cd: Any) -> None:
    app = new_app(cd, "Lambda")
    content = "version: 0.0\nResources: []\n"
    digest = hashlib.sha256(content.encode()).hexdigest()
    cd.register_application_revision(
        applicationName=app,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"content": content}},
    )
    got = cd.get_application_revision(
        applicationName=app,
        revision={"revisionType": "AppSpecContent", "appSpecContent": {"sha256": digest}},
    )
    assert got["revision"]["appSpecContent"] == {"content": content, "sha256": digest}
    wrong = {"revisionType": "String", "string": {"content": "x", "sha256": "0" * 64}}
    assert error_code(cd.register_application_revision, applicationName=app, revision=wrong) == (
        "InvalidRevisionException"
    )


def test_batch_get(cd: Any) -> None:
    app = new_app(cd)
    cd.register_application_revision(applicationName=app, revision=s3("one"))
    found = cd.batch_get_application_revisions(
        applicationName=app, revisions=[s3("one"), s3("two")]
    )
    assert [r["revisionLocation"] for r in found["revisions"]] == [s3("one")]
    assert "genericRevisionInfo" in found["revisions"][0]
    assert found["errorMessage"]
    assert error_code(
        cd.batch_get_application_revisions,
        applicationName=app,
        revisions=[s3(f"k{i}") for i in range(26)],
    ) == ("BatchLimitExceededException")


def test_list_filters_and_sorting(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    for key in ("web/1.zip", "web/2.zip", "api/1.zip"):
        cd.register_application_revision(applicationName=app, revision=s3(key))
    cd.register_application_revision(applicationName=app, revision=s3("x.zip", bucket="other"))
    cd.create_deployment_group(
        applicationName=app, deploymentGroupName="g", serviceRoleArn=ROLE_ARN
    )
    # What the engine does when deployments run: record use and the group's target.
    with server.services.db.tx() as conn:
        resources.record_revision_use(conn, app, s3("web/2.zip"), 2000.0)
        resources.record_revision_use(conn, app, s3("api/1.zip"), 1000.0)
        resources.update_deployment_group_doc(conn, app, "g", {"targetRevision": s3("web/2.zip")})

    def keys(**kwargs: Any) -> list[str]:
        found = cd.list_application_revisions(applicationName=app, **kwargs)["revisions"]
        return [r["s3Location"]["key"] for r in found]

    assert keys() == ["web/1.zip", "web/2.zip", "api/1.zip", "x.zip"]
    assert keys(s3Bucket="bundles", s3KeyPrefix="web/") == ["web/1.zip", "web/2.zip"]
    assert keys(s3Bucket="other") == ["x.zip"]
    assert keys(deployed="include") == ["web/2.zip"]
    assert keys(deployed="exclude") == ["web/1.zip", "api/1.zip", "x.zip"]
    assert keys(sortBy="lastUsedTime", sortOrder="descending")[:2] == ["web/2.zip", "api/1.zip"]
    assert keys(sortBy="registerTime", sortOrder="descending") == [
        "x.zip",
        "api/1.zip",
        "web/2.zip",
        "web/1.zip",
    ]
    info = cd.get_application_revision(applicationName=app, revision=s3("web/2.zip"))
    assert info["revisionInfo"]["deploymentGroups"] == ["g"]
    assert info["revisionInfo"]["firstUsedTime"].timestamp() == 2000.0


def test_list_errors(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    assert error_code(cd.list_application_revisions, applicationName=app, sortBy="name") == (
        "InvalidSortByException"
    )
    assert error_code(cd.list_application_revisions, applicationName=app, sortOrder="up") == (
        "InvalidSortOrderException"
    )
    assert error_code(cd.list_application_revisions, applicationName=app, deployed="maybe") == (
        "InvalidDeployedStateFilterException"
    )
    assert error_code(cd.list_application_revisions, applicationName=app, s3KeyPrefix="a/") == (
        "BucketNameFilterRequiredException"
    )
    assert error_code(cd.list_application_revisions, applicationName=app, s3Bucket="a") == (
        "InvalidBucketNameFilterException"
    )
    assert raw_error(
        server,
        "ListApplicationRevisions",
        {"applicationName": app, "s3Bucket": "bucket", "s3KeyPrefix": 5},
    ) == ("InvalidKeyPrefixFilterException")
    assert error_code(cd.list_application_revisions, applicationName=unique("missing")) == (
        "ApplicationDoesNotExistException"
    )
    assert error_code(cd.list_application_revisions, applicationName=app, nextToken="zz") == (
        "InvalidNextTokenException"
    )


def test_aws_cli_register_with_s3_location_shorthand(server: LiveServer, cd: Any) -> None:
    app = new_app(cd)
    aws_cli(
        server,
        "register-application-revision",
        "--application-name",
        app,
        "--s3-location",
        "bucket=bundles,key=cli.zip,bundleType=zip",
        "--description",
        "from the CLI",
    )
    got = cd.get_application_revision(applicationName=app, revision=s3("cli.zip"))
    assert got["revision"]["s3Location"]["bundleType"] == "zip"
    assert got["revisionInfo"]["description"] == "from the CLI"
