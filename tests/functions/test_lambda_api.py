"""The Lambda API through boto3: functions, versions, aliases, and bad input."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import LiveServer, start_live_server
from tests.functions.conftest import ECHO, ROLE, keyed_client, package, python_function

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
LAST_MODIFIED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_update_publish_and_list(lam: Any) -> None:
    zipped = package({"app.py": ECHO})
    created = python_function(
        lam, "orders", Timeout=5, MemorySize=256, Environment={"Variables": {"MODE": "a"}}
    )
    assert created["FunctionArn"] == ARN + "orders"
    assert created["Version"] == "$LATEST"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(zipped).digest()).decode()
    assert created["CodeSize"] == len(zipped)
    assert LAST_MODIFIED.fullmatch(created["LastModified"])
    assert (created["Timeout"], created["MemorySize"], created["State"]) == (5, 256, "Active")
    assert created["Environment"] == {"Variables": {"MODE": "a"}}

    got = lam.get_function(FunctionName="orders")
    assert got["Configuration"]["RevisionId"] == created["RevisionId"]
    v1 = lam.publish_version(FunctionName="orders", Description="first")
    assert (v1["Version"], v1["FunctionArn"]) == ("1", ARN + "orders:1")
    # Nothing changed since version 1: publishing again returns it.
    assert lam.publish_version(FunctionName="orders")["Version"] == "1"

    updated = lam.update_function_configuration(FunctionName="orders", Timeout=9)
    assert updated["Timeout"] == 9 and updated["RevisionId"] != created["RevisionId"]
    code = package({"app.py": ECHO + "\n# two\n"})
    updated = lam.update_function_code(FunctionName="orders", ZipFile=code, Publish=True)
    assert updated["Version"] == "2"
    assert lam.get_function_configuration(FunctionName="orders", Qualifier="1")["Timeout"] == 5
    assert lam.get_function_configuration(FunctionName=ARN + "orders:2")["Timeout"] == 9

    versions = lam.list_versions_by_function(FunctionName="orders")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["FunctionArn"] == ARN + "orders:$LATEST"
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert names == ["orders"]
    every = lam.list_functions(FunctionVersion="ALL")["Functions"]
    assert [f["Version"] for f in every] == ["$LATEST", "1", "2"]

    lam.delete_function(FunctionName="orders", Qualifier="1")
    assert [
        v["Version"] for v in lam.list_versions_by_function(FunctionName="orders")["Versions"]
    ] == ["$LATEST", "2"]
    assert lam.publish_version(FunctionName="orders", Description="x")["Version"] == "2"
    lam.delete_function(FunctionName="orders")
    assert lam.list_functions()["Functions"] == []


def test_code_from_the_built_in_bundle_store(server: LiveServer, lam: Any) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket="functions")
    zipped = package({"app.py": ECHO})
    s3.put_object(Bucket="functions", Key="echo.zip", Body=zipped)
    created = lam.create_function(
        FunctionName="from-s3",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": "functions", "S3Key": "echo.zip"},
    )
    assert created["CodeSize"] == len(zipped)
    with pytest.raises(ClientError) as exc:
        lam.update_function_code(FunctionName="from-s3", S3Bucket="functions", S3Key="nope.zip")
    assert error(exc) == ("InvalidParameterValueException", 400)
    assert "NoSuchKey" in str(exc.value)


def test_aliases_and_weights(lam: Any) -> None:
    python_function(lam, "pay", Publish=True)
    lam.update_function_configuration(FunctionName="pay", Timeout=4)
    lam.publish_version(FunctionName="pay")
    alias = lam.create_alias(
        FunctionName="pay",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}},
    )
    assert alias["AliasArn"] == ARN + "pay:live"
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    moved = lam.update_alias(
        FunctionName="pay",
        Name="live",
        FunctionVersion="2",
        RoutingConfig={"AdditionalVersionWeights": {}},
        RevisionId=alias["RevisionId"],
    )
    assert moved["FunctionVersion"] == "2" and "RoutingConfig" not in moved
    assert lam.get_alias(FunctionName="pay", Name="live")["RevisionId"] == moved["RevisionId"]
    with pytest.raises(ClientError) as exc:
        lam.update_alias(FunctionName="pay", Name="live", RevisionId=alias["RevisionId"])
    assert error(exc) == ("PreconditionFailedException", 412)
    assert [a["Name"] for a in lam.list_aliases(FunctionName="pay")["Aliases"]] == ["live"]
    assert lam.list_aliases(FunctionName="pay", FunctionVersion="1")["Aliases"] == []
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName="pay", Qualifier="2")
    assert error(exc) == ("ResourceConflictException", 409)
    lam.delete_alias(FunctionName="pay", Name="live")
    assert lam.list_aliases(FunctionName="pay")["Aliases"] == []


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"FunctionName": "ok", "Runtime": "cobol85"}, "InvalidParameterValueException"),
        ({"FunctionName": "bad name!"}, "InvalidParameterValueException"),
        ({"FunctionName": "ok", "Timeout": 901}, "InvalidParameterValueException"),
        ({"FunctionName": "ok", "Handler": "nodot"}, "InvalidParameterValueException"),
        ({"FunctionName": "ok", "Role": "not-a-role"}, "InvalidParameterValueException"),
        (
            {"FunctionName": "ok", "Environment": {"Variables": {"AWS_REGION": "x"}}},
            "InvalidParameterValueException",
        ),
        (
            {"FunctionName": "ok", "Code": {"ZipFile": b"not a zip"}},
            "InvalidParameterValueException",
        ),
        ({"FunctionName": "taken"}, "ResourceConflictException"),
    ],
)
def test_create_refuses_bad_input(lam: Any, call: dict[str, Any], expected: str) -> None:
    python_function(lam, "taken")
    before = lam.list_functions(FunctionVersion="ALL")["Functions"]
    arguments = {
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": package({"app.py": ECHO})},
        **call,
    }
    with pytest.raises(ClientError) as exc:
        lam.create_function(**arguments)
    assert error(exc)[0] == expected
    assert lam.list_functions(FunctionVersion="ALL")["Functions"] == before


def alias_doc(lam: Any) -> dict[str, Any]:
    doc: dict[str, Any] = lam.get_alias(FunctionName="fn", Name="live")
    doc.pop("ResponseMetadata")
    return doc


def test_unknown_things_and_bad_aliases_change_nothing(lam: Any) -> None:
    python_function(lam, "fn", Publish=True)
    lam.publish_version(FunctionName="fn", Description="two")  # unchanged: still "1"
    lam.update_function_configuration(FunctionName="fn", Timeout=7)
    lam.publish_version(FunctionName="fn")
    lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="1")
    before = alias_doc(lam)

    for kwargs in ({"FunctionName": "ghost"}, {"FunctionName": "fn", "Qualifier": "9"}):
        with pytest.raises(ClientError) as exc:
            lam.get_function(**kwargs)
        assert error(exc) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="fn", Qualifier="nosuchalias")
    assert error(exc) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        lam.get_alias(FunctionName="fn", Name="nosuchalias")
    assert error(exc) == ("ResourceNotFoundException", 404)

    bad_updates: list[dict[str, Any]] = [
        {"RoutingConfig": {"AdditionalVersionWeights": {"2": 1.5}}},
        {"RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}}},
        {"RoutingConfig": {"AdditionalVersionWeights": {"1": 0.1}}},
        {"RoutingConfig": {"AdditionalVersionWeights": {"9": 0.1}}},
        {"FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}},
        {"FunctionVersion": "7"},
    ]
    for kwargs in bad_updates:
        with pytest.raises(ClientError) as exc:
            lam.update_alias(FunctionName="fn", Name="live", **kwargs)
        assert error(exc)[0] in ("InvalidParameterValueException", "ResourceNotFoundException")
    assert alias_doc(lam) == before
    with pytest.raises(ClientError) as exc:
        lam.create_alias(FunctionName="fn", Name="live", FunctionVersion="2")
    assert error(exc) == ("ResourceConflictException", 409)
    with pytest.raises(ClientError) as exc:
        lam.create_alias(FunctionName="fn", Name="123", FunctionVersion="2")
    assert error(exc) == ("InvalidParameterValueException", 400)
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName="fn", Qualifier="$LATEST")
    assert error(exc) == ("InvalidParameterValueException", 400)
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="fn")["Versions"]] == [
        "$LATEST",
        "1",
        "2",
    ]


def test_admin_only_callers(server: LiveServer) -> None:
    stranger = keyed_client(server, "AKSYNOTAKEY000000000")
    with pytest.raises(ClientError) as exc:
        stranger.list_functions()
    assert error(exc)[0] == "UnrecognizedClientException"


def test_packages_on_disk_follow_the_versions(server: LiveServer, lam: Any) -> None:
    python_function(lam, "disk", Publish=True)
    folder = server.data_dir / "functions" / "disk"
    assert len(list(folder.glob("*.zip"))) == 1
    assert folder.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.glob("*.zip"))
    lam.update_function_code(FunctionName="disk", ZipFile=package({"app.py": ECHO + "#2\n"}))
    assert len(list(folder.glob("*.zip"))) == 2  # version 1 still runs the first
    lam.update_function_code(FunctionName="disk", ZipFile=package({"app.py": ECHO + "#3\n"}))
    assert len(list(folder.glob("*.zip"))) == 2  # the second was only $LATEST's
    lam.delete_function(FunctionName="disk", Qualifier="1")
    assert len(list(folder.glob("*.zip"))) == 1
    lam.delete_function(FunctionName="disk")
    assert not folder.exists()


def test_list_pages(lam: Any) -> None:
    for name in ("a1", "a2", "a3"):
        python_function(lam, name)
    first = lam.list_functions(MaxItems=2)
    assert [f["FunctionName"] for f in first["Functions"]] == ["a1", "a2"]
    rest = lam.list_functions(MaxItems=2, Marker=first["NextMarker"])
    assert [f["FunctionName"] for f in rest["Functions"]] == ["a3"] and "NextMarker" not in rest
    pages = lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 1})
    assert [f["FunctionName"] for page in pages for f in page["Functions"]] == ["a1", "a2", "a3"]


def test_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    servers = start_live_server(tmp_path / "server", database=pg_url)
    server = next(servers)
    try:
        lam = server.client("lambda")
        python_function(lam, "pg", Publish=True)
        lam.update_function_configuration(FunctionName="pg", Timeout=6)
        assert lam.publish_version(FunctionName="pg")["Version"] == "2"
        lam.create_alias(
            FunctionName="pg",
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}},
        )
        answer = lam.invoke(FunctionName="pg", Qualifier="live", Payload=b'{"db": "pg"}')
        assert answer["ExecutedVersion"] == "2"
        assert json.loads(answer["Payload"].read())["event"] == {"db": "pg"}
    finally:
        servers.close()
