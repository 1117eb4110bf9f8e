"""The built-in S3 bundle store, driven by boto3, the AWS CLI and raw signed HTTP requests."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import http.client
import os
import subprocess
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from shipyard import sigv4
from shipyard.bundlestore.auth import presign_url
from shipyard.bundlestore.payload import ChunkChain
from shipyard.bundlestore.urls import bundle_url, head_bundle
from shipyard.store import credentials
from tests.conftest import LiveServer, start_live_server

MiB = 1024 * 1024
BIG = os.urandom(9 * MiB)  # over the CLI's 8 MiB multipart threshold; generated once
AWS_CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws"


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


@pytest.fixture
def s3(live_server: LiveServer) -> Any:
    client = live_server.client("s3")
    client.create_bucket(Bucket="bundles")
    return client


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server that takes bundles of at most 6 MiB."""
    yield from start_live_server(tmp_path / "small", max_bundle_bytes=6 * MiB)


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed_request(
    live: LiveServer,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    payload_hash: str | None = None,
    chunks_of: int = 0,
    flip_byte: int | None = None,
) -> tuple[int, bytes]:
    """Send an S3 request signed here, byte by byte, with the admin key.

    With ``chunks_of``, ``body`` is sent as STREAMING-AWS4-HMAC-SHA256-PAYLOAD in signed
    chunks of that size; ``payload_hash`` otherwise defaults to the body's SHA-256.
    ``flip_byte`` corrupts the body as sent at that offset, after signing.
    """
    host = live.url.removeprefix("http://")
    amz_date = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    if chunks_of:
        payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    all_headers["host"] = host
    all_headers["x-amz-date"] = amz_date
    all_headers["x-amz-content-sha256"] = payload_hash or hashlib.sha256(body).hexdigest()
    signed = sorted(all_headers)
    canonical = sigv4.canonical_request(
        method,
        path,
        [],
        all_headers,
        signed,
        all_headers["x-amz-content-sha256"],
        encode_path=False,
    )
    seed = sigv4.signature(live.secret_access_key, amz_date, scope, canonical)
    all_headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={live.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed)}, Signature={seed}"
    )
    if chunks_of:
        key = sigv4.signing_key(live.secret_access_key, amz_date[:8], "us-east-1", "s3")
        body = signed_chunks(body, chunks_of, ChunkChain(key, amz_date, scope, seed))
    if flip_byte is not None:
        body = body[:flip_byte] + bytes([body[flip_byte] ^ 1]) + body[flip_byte + 1 :]
    connection = http.client.HTTPConnection(host, timeout=10)
    try:
        connection.request(method, path, body=body, headers=all_headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def signed_chunks(data: bytes, size: int, chain: ChunkChain) -> bytes:
    out = b""
    for piece in [data[i : i + size] for i in range(0, len(data), size)] + [b""]:
        signature = chain.next(hashlib.sha256(piece).hexdigest())
        out += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + piece + b"\r\n"
    return out


# -- buckets -------------------------------------------------------------------------------


def test_bucket_lifecycle_and_errors(live_server: LiveServer) -> None:
    s3 = live_server.client("s3")
    s3.create_bucket(Bucket="releases")
    s3.head_bucket(Bucket="releases")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["releases"]
    with pytest.raises(ClientError) as info:
        s3.create_bucket(Bucket="releases")
    assert error_code(info) == "BucketAlreadyOwnedByYou"
    for bad in ("Upper_Case", "ab", "console", "192.168.1.1", "a..b"):
        with pytest.raises(ClientError) as info:
            s3.create_bucket(Bucket=bad)
        assert error_code(info) == "InvalidBucketName", bad
    s3.put_object(Bucket="releases", Key="app.zip", Body=b"zip")
    with pytest.raises(ClientError) as info:
        s3.delete_bucket(Bucket="releases")
    assert error_code(info) == "BucketNotEmpty"
    s3.delete_object(Bucket="releases", Key="app.zip")
    s3.delete_bucket(Bucket="releases")
    with pytest.raises(ClientError) as info:
        s3.head_bucket(Bucket="releases")
    assert error_code(info) == "404"
    with pytest.raises(ClientError) as info:
        s3.list_objects_v2(Bucket="releases")
    assert error_code(info) == "NoSuchBucket"
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="releases", Key="k", Body=b"x")
    assert error_code(info) == "NoSuchBucket"
    with pytest.raises(ClientError) as info:
        s3.get_bucket_acl(Bucket="missing")
    assert error_code(info) == "NotImplemented"


# -- objects -------------------------------------------------------------------------------


def test_put_get_head_delete(s3: Any) -> None:
    key = "apps/web ünïcode+plus.tar"
    put = s3.put_object(
        Bucket="bundles",
        Key=key,
        Body=b"bundle bytes",
        ContentType="application/x-tar",
        Metadata={"commit": "abc123"},
    )
    assert put["ETag"] == md5_etag(b"bundle bytes")
    got = s3.get_object(Bucket="bundles", Key=key)
    assert got["Body"].read() == b"bundle bytes"
    assert got["ETag"] == put["ETag"]
    assert got["VersionId"] == put["VersionId"]
    assert got["ContentType"] == "application/x-tar"
    assert got["Metadata"] == {"commit": "abc123"}
    head = s3.head_object(Bucket="bundles", Key=key)
    assert head["ContentLength"] == 12
    assert head["ETag"] == put["ETag"]
    s3.delete_object(Bucket="bundles", Key=key)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="bundles", Key=key)
    assert error_code(info) == "NoSuchKey"
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket="bundles", Key=key)
    assert error_code(info) == "404"


def test_every_put_is_a_version_and_versions_can_be_read(s3: Any) -> None:
    first = s3.put_object(Bucket="bundles", Key="app.zip", Body=b"one")["VersionId"]
    second = s3.put_object(Bucket="bundles", Key="app.zip", Body=b"two")["VersionId"]
    assert first != second
    assert s3.get_object(Bucket="bundles", Key="app.zip")["Body"].read() == b"two"
    old = s3.get_object(Bucket="bundles", Key="app.zip", VersionId=first)
    assert old["Body"].read() == b"one"
    assert old["ETag"] == md5_etag(b"one")
    assert s3.head_object(Bucket="bundles", Key="app.zip", VersionId=first)["ContentLength"] == 3
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="bundles", Key="app.zip", VersionId="0" * 32)
    assert error_code(info) == "NoSuchVersion"
    s3.delete_object(Bucket="bundles", Key="app.zip", VersionId=second)
    assert s3.get_object(Bucket="bundles", Key="app.zip")["Body"].read() == b"one"


def test_range_requests(s3: Any) -> None:
    s3.put_object(Bucket="bundles", Key="digits", Body=b"0123456789")
    cases = {"bytes=2-5": b"2345", "bytes=7-": b"789", "bytes=-3": b"789", "bytes=8-99": b"89"}
    for wanted, expected in cases.items():
        got = s3.get_object(Bucket="bundles", Key="digits", Range=wanted)
        assert got["Body"].read() == expected, wanted
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket="bundles", Key="digits", Range="bytes=2-4")["ContentRange"] == (
        "bytes 2-4/10"
    )
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="bundles", Key="digits", Range="bytes=10-")
    assert error_code(info) == "InvalidRange"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_copy_object_and_batch_delete(s3: Any) -> None:
    s3.put_object(Bucket="bundles", Key="a", Body=b"alpha", ContentType="text/plain")
    copied = s3.copy_object(Bucket="bundles", Key="b", CopySource={"Bucket": "bundles", "Key": "a"})
    assert copied["CopyObjectResult"]["ETag"] == md5_etag(b"alpha")
    assert s3.get_object(Bucket="bundles", Key="b")["ContentType"] == "text/plain"
    deleted = s3.delete_objects(
        Bucket="bundles", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "never"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["a", "b", "never"]
    assert s3.list_objects_v2(Bucket="bundles")["KeyCount"] == 0


def test_listing_v1_and_v2_with_prefix_delimiter_and_pages(s3: Any) -> None:
    keys = ["app/1.zip", "app/2.zip", "app/old/0.zip", "db/x.tar", "readme", "z y+z"]
    for key in keys:
        s3.put_object(Bucket="bundles", Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket="bundles")
    assert [o["Key"] for o in listed["Contents"]] == keys
    assert listed["Contents"][0]["ETag"] == md5_etag(b"app/1.zip")
    assert listed["Contents"][0]["Size"] == 9
    top = s3.list_objects_v2(Bucket="bundles", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["app/", "db/"]
    assert [o["Key"] for o in top["Contents"]] == ["readme", "z y+z"]
    app = s3.list_objects(Bucket="bundles", Prefix="app/", Delimiter="/")
    assert [o["Key"] for o in app["Contents"]] == ["app/1.zip", "app/2.zip"]
    assert [p["Prefix"] for p in app["CommonPrefixes"]] == ["app/old/"]
    for operation in ("list_objects", "list_objects_v2"):
        pages = list(
            s3.get_paginator(operation).paginate(Bucket="bundles", PaginationConfig={"PageSize": 2})
        )
        assert len(pages) == 3, operation
        assert [o["Key"] for page in pages for o in page["Contents"]] == keys
        rolled = s3.get_paginator(operation).paginate(
            Bucket="bundles", Delimiter="/", PaginationConfig={"PageSize": 1}
        )
        entries = [
            item
            for page in rolled
            for item in [o["Key"] for o in page.get("Contents", [])]
            + [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        ]
        assert entries == ["app/", "db/", "readme", "z y+z"], operation
    after = s3.list_objects_v2(Bucket="bundles", StartAfter="db/x.tar", MaxKeys=1)
    assert [o["Key"] for o in after["Contents"]] == ["readme"]
    assert after["IsTruncated"] is True


# -- multipart uploads ---------------------------------------------------------------------


def test_aws_cli_multipart_upload_over_8_mib(
    live_server: LiveServer, s3: Any, tmp_path: Path
) -> None:
    source = tmp_path / "bundle.zip"
    source.write_bytes(BIG)
    env = live_server.cli_env() | {"AWS_ENDPOINT_URL_S3": live_server.url}
    done = subprocess.run(
        [str(AWS_CLI), "s3", "cp", str(source), "s3://bundles/cli/bundle.zip"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    head = s3.head_object(Bucket="bundles", Key="cli/bundle.zip")
    assert head["ETag"] == multipart_etag(BIG, 8 * MiB)  # the CLI's 8 MiB parts
    assert s3.get_object(Bucket="bundles", Key="cli/bundle.zip")["Body"].read() == BIG


def test_aws_deploy_push_uploads_and_registers_a_checkable_revision(
    live_server: LiveServer, s3: Any, tmp_path: Path
) -> None:
    source = tmp_path / "app"
    source.mkdir()
    (source / "appspec.yml").write_text("version: 0.0\nos: linux\n")
    (source / "payload.bin").write_bytes(BIG[: 7 * MiB])  # push goes multipart above 6 MB
    live_server.client("codedeploy").create_application(applicationName="web")
    env = live_server.cli_env() | {"AWS_ENDPOINT_URL_S3": live_server.url}
    command = ["deploy", "push", "--application-name", "web", "--source", str(source)]
    command += ["--s3-location", "s3://bundles/web.zip"]
    done = subprocess.run(
        [str(AWS_CLI), *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    revisions = live_server.client("codedeploy").list_application_revisions(applicationName="web")
    location = revisions["revisions"][0]["s3Location"]
    assert location["eTag"].endswith("-2")
    found = head_bundle(live_server.services, location)
    assert found is not None
    assert (found["etag"], found["version"]) == (location["eTag"], location["version"])


def test_boto3_upload_file_multipart_and_download(s3: Any, tmp_path: Path) -> None:
    source, copy = tmp_path / "up.bin", tmp_path / "down.bin"
    source.write_bytes(BIG)
    config = TransferConfig(multipart_threshold=1 * MiB, multipart_chunksize=5 * MiB)
    s3.upload_file(str(source), "bundles", "boto.bin", Config=config)
    assert s3.head_object(Bucket="bundles", Key="boto.bin")["ETag"] == multipart_etag(BIG, 5 * MiB)
    s3.download_file("bundles", "boto.bin", str(copy), Config=config)
    assert copy.read_bytes() == BIG


def test_multipart_errors_and_list_parts(s3: Any) -> None:
    upload = s3.create_multipart_upload(Bucket="bundles", Key="mp")["UploadId"]
    first = s3.upload_part(
        Bucket="bundles", Key="mp", UploadId=upload, PartNumber=1, Body=b"x" * 10
    )
    second = s3.upload_part(Bucket="bundles", Key="mp", UploadId=upload, PartNumber=2, Body=b"y")
    parts = s3.list_parts(Bucket="bundles", Key="mp", UploadId=upload)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, 10, first["ETag"]),
        (2, 1, second["ETag"]),
    ]
    wrong = [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket="bundles", Key="mp", UploadId=upload, MultipartUpload={"Parts": wrong}
        )
    assert error_code(info) == "InvalidPart"
    both = [{"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]
    with pytest.raises(ClientError) as info:  # a part before the last is under 5 MiB
        s3.complete_multipart_upload(
            Bucket="bundles", Key="mp", UploadId=upload, MultipartUpload={"Parts": both}
        )
    assert error_code(info) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket="bundles", Key="mp", UploadId=upload)
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket="bundles", Key="mp", UploadId=upload, PartNumber=3, Body=b"z")
    assert error_code(info) == "NoSuchUpload"


# -- limits --------------------------------------------------------------------------------


def test_too_large_uploads_are_refused_and_the_object_kept(small_server: LiveServer) -> None:
    s3 = small_server.client("s3")
    s3.create_bucket(Bucket="bundles")
    good = s3.put_object(Bucket="bundles", Key="app.zip", Body=b"good")
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket="bundles", Key="app.zip", Body=BIG[: 7 * MiB])
    assert error_code(info) == "EntityTooLarge"
    upload = s3.create_multipart_upload(Bucket="bundles", Key="app.zip")["UploadId"]
    parts = []
    for number, piece in enumerate([BIG[: 5 * MiB], BIG[5 * MiB : 7 * MiB]], start=1):
        etag = s3.upload_part(
            Bucket="bundles", Key="app.zip", UploadId=upload, PartNumber=number, Body=piece
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    with pytest.raises(ClientError) as info:
        s3.complete_multipart_upload(
            Bucket="bundles", Key="app.zip", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    assert error_code(info) == "EntityTooLarge"
    kept = s3.get_object(Bucket="bundles", Key="app.zip")
    assert kept["Body"].read() == b"good"
    assert kept["VersionId"] == good["VersionId"]
    assert not list((small_server.data_dir / "bundles" / ".tmp").iterdir())


# -- authentication ------------------------------------------------------------------------


def test_wrong_keys_and_anonymous_requests_are_refused(live_server: LiveServer, s3: Any) -> None:
    wrong_secret = dataclasses.replace(live_server, secret_access_key="wrong-secret")
    with pytest.raises(ClientError) as info:
        wrong_secret.client("s3").list_buckets()
    assert error_code(info) == "SignatureDoesNotMatch"
    wrong_message = info.value.response["Error"]["Message"]
    # An unknown key id answers as a wrong secret does: answers tell no key ids apart.
    unknown_key = dataclasses.replace(live_server, access_key_id="AKIAUNKNOWNKEY000000")
    with pytest.raises(ClientError) as info:
        unknown_key.client("s3").list_buckets()
    assert error_code(info) == "SignatureDoesNotMatch"
    assert info.value.response["Error"]["Message"] == wrong_message
    other_region = dataclasses.replace(live_server, region="ap-south-2")
    with pytest.raises(ClientError) as info:
        other_region.client("s3").list_buckets()
    assert error_code(info) == "AuthorizationHeaderMalformed"
    status, body = http_get(f"{live_server.url}/bundles")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body


def test_presigned_get_works_without_credentials_and_tampering_fails(
    live_server: LiveServer, s3: Any
) -> None:
    s3.put_object(Bucket="bundles", Key="dir/app v1.zip", Body=b"presigned")
    presigner = boto3.client(
        "s3",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=live_server.access_key_id,
        aws_secret_access_key=live_server.secret_access_key,
        config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": "bundles", "Key": "dir/app v1.zip"}, ExpiresIn=60
    )
    assert http_get(url) == (200, b"presigned")
    assert http_get(url, {"Range": "bytes=3-5"}) == (206, b"sig")
    signature = url.rsplit("X-Amz-Signature=", 1)[1]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    status, body = http_get(tampered)
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in body
    status, body = http_get(url.replace("X-Amz-Expires=60", "X-Amz-Expires=61"))
    assert status == 403


def test_payload_hash_must_match_the_body(live_server: LiveServer, s3: Any) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    status, body = signed_request(live_server, "PUT", "/bundles/k", b"data", payload_hash=wrong)
    assert status == 400
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in body
    with pytest.raises(ClientError):
        s3.head_object(Bucket="bundles", Key="k")


def test_streaming_chunk_signatures_match_the_published_aws_example() -> None:
    # docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html: 66560 bytes of "a".
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    headers = {
        "host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "content-length": "66824",
    }
    scope = "20130524/us-east-1/s3/aws4_request"
    canonical = sigv4.canonical_request(
        "PUT",
        "/examplebucket/chunkObject.txt",
        [],
        headers,
        sorted(headers),
        headers["x-amz-content-sha256"],
        encode_path=False,
    )
    seed = sigv4.signature(secret, headers["x-amz-date"], scope, canonical)
    assert seed == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    key = sigv4.signing_key(secret, "20130524", "us-east-1", "s3")
    chain = ChunkChain(key, headers["x-amz-date"], scope, seed)
    signatures = [
        chain.next(hashlib.sha256(d).hexdigest()) for d in (b"a" * 65536, b"a" * 1024, b"")
    ]
    assert signatures == [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]


def test_signed_chunked_upload_is_verified_chunk_by_chunk(live_server: LiveServer, s3: Any) -> None:
    data = BIG[:200_000]
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    status, body = signed_request(
        live_server, "PUT", "/bundles/chunked", data, headers=headers, chunks_of=65536
    )
    assert status == 200, body
    got = s3.get_object(Bucket="bundles", Key="chunked")
    assert got["Body"].read() == data
    assert "ContentEncoding" not in got  # aws-chunked is transport, not content

    # One data byte changed after signing: that chunk's signature no longer matches.
    status, body = signed_request(
        live_server,
        "PUT",
        "/bundles/chunked",
        b"x" * 70_000,
        headers=headers,
        chunks_of=65536,
        flip_byte=200,
    )
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in body
    assert s3.get_object(Bucket="bundles", Key="chunked")["Body"].read() == data


def test_unsigned_payload_with_trailing_checksum_as_botocore_sends_it(s3: Any) -> None:
    def checksum_in_trailer(params: dict[str, Any], **_: Any) -> None:
        # botocore uses the trailer over HTTPS only; ask for it over this plain-HTTP server.
        params["context"]["checksum"]["request_algorithm"]["in"] = "trailer"

    s3.meta.events.register("before-call.s3.PutObject", checksum_in_trailer)
    put = s3.put_object(Bucket="bundles", Key="trailer", Body=BIG[:100_000])
    crc = base64.b64encode(zlib.crc32(BIG[:100_000]).to_bytes(4, "big")).decode()
    assert put["ChecksumCRC32"] == crc
    assert put["ETag"] == md5_etag(BIG[:100_000])
    assert s3.get_object(Bucket="bundles", Key="trailer")["Body"].read() == BIG[:100_000]


def test_a_wrong_trailing_checksum_is_refused(live_server: LiveServer, s3: Any) -> None:
    wrong = base64.b64encode(zlib.crc32(b"other").to_bytes(4, "big")).decode()
    framed = f"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{wrong}\r\n\r\n".encode()
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": "5",
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    status, body = signed_request(
        live_server,
        "PUT",
        "/bundles/t",
        framed,
        headers=headers,
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    assert status == 400
    assert b"<Code>BadDigest</Code>" in body
    right = base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    status, _ = signed_request(
        live_server,
        "PUT",
        "/bundles/t",
        framed.replace(wrong.encode(), right.encode()),
        headers=headers,
        payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    assert status == 200
    assert s3.get_object(Bucket="bundles", Key="t")["Body"].read() == b"hello"


# -- bundle URLs for agents ----------------------------------------------------------------


def test_bundle_url_is_a_read_only_presigned_url_of_the_builtin_store(
    live_server: LiveServer, s3: Any
) -> None:
    services = live_server.services
    first = s3.put_object(Bucket="bundles", Key="app/v1.zip", Body=b"first")["VersionId"]
    s3.put_object(Bucket="bundles", Key="app/v1.zip", Body=b"second")
    url = bundle_url(services, {"bucket": "bundles", "key": "app/v1.zip"})
    assert http_get(url) == (200, b"second")
    pinned = bundle_url(services, {"Bucket": "bundles", "Key": "app/v1.zip", "Version": first})
    assert http_get(pinned) == (200, b"first")
    # The same internal key every time, and it may not write.
    assert url.split("X-Amz-Credential=")[1][:20] == pinned.split("X-Amz-Credential=")[1][:20]
    key_id = url.split("X-Amz-Credential=")[1].split("%2F")[0]
    with services.db.tx() as conn:
        found = credentials.lookup_key(conn, services.db.secret_box, key_id)
    assert found is not None and found[1:3] == ("internal", "bundle-reader")
    writer = presign_url(
        sigv4.Credentials(key_id, found[0]),
        endpoint=services.config.url,
        bucket="bundles",
        key="app/v1.zip",
        region="us-east-1",
        now=time.time(),
        expires=60,
        method="PUT",
    )
    request = urllib.request.Request(writer, data=b"evil", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(request)
    assert denied.value.code == 403
    assert b"<Code>AccessDenied</Code>" in denied.value.read()
    assert head_bundle(services, {"bucket": "bundles", "key": "app/v1.zip"}) == {
        "size": 6,
        "etag": hashlib.md5(b"second").hexdigest(),
        "version": s3.head_object(Bucket="bundles", Key="app/v1.zip")["VersionId"],
    }
    assert head_bundle(services, {"bucket": "bundles", "key": "app/v1.zip", "version": first}) == {
        "size": 5,
        "etag": hashlib.md5(b"first").hexdigest(),
        "version": first,
    }
    assert head_bundle(services, {"bucket": "bundles", "key": "missing.zip"}) is None
    assert head_bundle(services, {"bucket": "nobucket", "key": "app/v1.zip"}) is None


def test_bundle_urls_expire(live_server: LiveServer, s3: Any) -> None:
    s3.put_object(Bucket="bundles", Key="old.zip", Body=b"old")
    two_hours_ago = dataclasses.replace(live_server.services, clock=lambda: time.time() - 7200)
    url = bundle_url(two_hours_ago, {"bucket": "bundles", "key": "old.zip"}, expires=3600)
    status, body = http_get(url)
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body and b"expired" in body


def test_bundle_url_and_head_against_an_external_endpoint(live_server: LiveServer, s3: Any) -> None:
    # This server's own S3 API stands in for an external S3-compatible store.
    s3.put_object(Bucket="bundles", Key="ext.zip", Body=b"external")
    config = dataclasses.replace(
        live_server.services.config,
        s3_endpoint=live_server.url + "/",
        s3_access_key_id=live_server.access_key_id,
        s3_secret_access_key=live_server.secret_access_key,
    )
    services = dataclasses.replace(live_server.services, config=config)
    url = bundle_url(services, {"bucket": "bundles", "key": "ext.zip"})
    assert live_server.access_key_id in url
    assert http_get(url) == (200, b"external")
    found = head_bundle(services, {"bucket": "bundles", "key": "ext.zip"})
    assert found is not None
    assert (found["size"], found["etag"]) == (8, hashlib.md5(b"external").hexdigest())
    assert head_bundle(services, {"bucket": "bundles", "key": "nope.zip"}) is None
