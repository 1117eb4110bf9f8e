"""Invoke's fast path keeps its answers exact: what it runs follows every change at once,
callers without a key learn nothing, and the Runtime API speaks plain HTTP/1.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shipyard.functions.runtime_api import Invocation, RuntimeApi
from tests.conftest import LiveServer
from tests.functions.conftest import keyed_client, python_function

SHOWS_VERSION_AND_XX = """\
import os

def handler(event, context):
    return {"version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "x": os.environ.get("XX")}
"""


def ran(lam: Any, **call: Any) -> dict[str, Any]:
    answer = lam.invoke(**call)
    assert "FunctionError" not in answer
    body: dict[str, Any] = json.loads(answer["Payload"].read())
    assert body["version"] == answer["ExecutedVersion"]
    return body


def not_found(lam: Any, **call: Any) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(**call)
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_every_change_is_seen_by_the_next_invoke(lam: Any) -> None:
    python_function(lam, "chg", SHOWS_VERSION_AND_XX, Publish=True)
    lam.update_function_configuration(FunctionName="chg", Environment={"Variables": {"XX": "2"}})
    lam.publish_version(FunctionName="chg")
    lam.create_alias(FunctionName="chg", Name="live", FunctionVersion="1")
    assert ran(lam, FunctionName="chg", Qualifier="live")["version"] == "1"

    lam.update_alias(FunctionName="chg", Name="live", FunctionVersion="2")
    assert ran(lam, FunctionName="chg", Qualifier="live") == {"version": "2", "x": "2"}
    lam.update_alias(
        FunctionName="chg",
        Name="live",
        RoutingConfig={"AdditionalVersionWeights": {"1": 1.0}},  # every call on version 1
    )
    assert ran(lam, FunctionName="chg", Qualifier="live")["version"] == "1"

    lam.update_function_configuration(FunctionName="chg", Environment={"Variables": {"XX": "3"}})
    assert ran(lam, FunctionName="chg") == {"version": "$LATEST", "x": "3"}
    assert ran(lam, FunctionName="chg", Qualifier="2")["x"] == "2"  # published: unchanged

    lam.delete_alias(FunctionName="chg", Name="live")
    not_found(lam, FunctionName="chg", Qualifier="live")
    lam.delete_function(FunctionName="chg", Qualifier="1")
    not_found(lam, FunctionName="chg", Qualifier="1")
    lam.delete_function(FunctionName="chg")
    not_found(lam, FunctionName="chg")


def test_callers_without_a_key_learn_nothing(server: LiveServer, lam: Any) -> None:
    python_function(lam, "known", SHOWS_VERSION_AND_XX)
    stranger = keyed_client(server, "AKSYNOTAKEY000000000")
    wrong_secret = keyed_client(server, server.access_key_id)
    for client in (stranger, wrong_secret):
        for name in ("known", "unknown", "not a name!"):
            with pytest.raises(ClientError) as exc:
                client.invoke(FunctionName=name)
            assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="not a name!")
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValueException"


# -- the Runtime API on its own, with a runtime written here -------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[bytes, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


def _invocation(request_id: str) -> Invocation:
    return Invocation(request_id, b'{"n":1}', 0, "arn:aws:lambda:x:1:function:f", "Root=1")


def test_runtime_api_answers_chunked_posts_and_skips_runtimes_that_hung_up() -> None:
    async def scenario() -> None:
        api = RuntimeApi()
        host, port = (await api.start()).split(":")
        next_ = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
        # A runtime that asks for work and hangs up is not handed the invocation.
        _, gone = await asyncio.open_connection(host, int(port))
        gone.write(next_)
        await gone.drain()
        gone.close()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(next_)
        await writer.drain()
        await asyncio.sleep(0.1)  # both connections' requests are in
        invocation = _invocation("r1")
        api.submit(invocation)
        head, body = await asyncio.wait_for(_exchange(reader, writer, b""), 10)
        assert head.startswith(b"HTTP/1.1 200") and b"Lambda-Runtime-Aws-Request-Id: r1" in head
        assert body == b'{"n":1}'
        # curl's way: Expect: 100-continue, then a chunked body.
        writer.write(
            b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nHost: x\r\n"
            b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        head, _ = await _exchange(reader, writer, b'3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n')
        assert head.startswith(b"HTTP/1.1 202")
        assert await asyncio.wait_for(invocation.result, 10) == (b'{"a":1}', False)
        # Unknown ids and paths get their errors; the connection stays usable.
        post = b"POST /2018-06-01/runtime/invocation/nope/response HTTP/1.1\r\n"
        head, body = await _exchange(reader, writer, post + b"Content-Length: 0\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"InvalidRequestID" in body
        head, _ = await _exchange(reader, writer, b"GET /elsewhere HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")
        # A request that is not HTTP ends the connection.
        writer.write(b"\x00\x01 not http\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        await api.stop()

    asyncio.run(scenario())


def test_runtime_api_queues_until_asked_and_reports_unfinished() -> None:
    async def scenario() -> None:
        api = RuntimeApi()
        host, port = (await api.start()).split(":")
        first, second = _invocation("a"), _invocation("b")
        api.submit(first)
        api.submit(second)
        reader, writer = await asyncio.open_connection(host, int(port))
        next_ = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
        head, _ = await asyncio.wait_for(_exchange(reader, writer, next_), 10)
        assert b"Lambda-Runtime-Aws-Request-Id: a" in head
        assert [i.request_id for i in api.unfinished()] == ["a", "b"]  # handed out, queued
        writer.close()
        await api.stop()

    asyncio.run(scenario())
