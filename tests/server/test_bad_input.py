"""Bad input of finding 8 of issue 10: names with a trailing newline were accepted, and
deeply nested JSON or a 5,000-digit command id gave a 500 with a traceback. Every one
now gets the AWS error shape with a specific name, and nothing is stored."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from shipyard.server.operations import API_OPERATIONS
from tests.conftest import LiveServer
from tests.server.crud_support import error_code
from tests.server.wire import AGENT, API, call, instance_keys


@pytest.mark.parametrize("name", ["app\n", "app\r\n", "\napp"])
def test_a_name_with_a_newline_is_refused(codedeploy: Any, name: str) -> None:
    code = error_code(codedeploy.create_application, applicationName=name)
    assert code == "InvalidApplicationNameException"
    assert codedeploy.list_applications()["applications"] == []


def _refused(answer: Any, error: str) -> None:
    assert (answer.status, answer.error) == (400, error)
    assert b"Traceback" not in answer.body


@pytest.mark.parametrize("depth", [100_000, 40])
def test_deeply_nested_json_is_a_serialization_error(live_server: LiveServer, depth: int) -> None:
    body = b'{"applicationName":' + b"[" * depth + b"]" * depth + b"}"
    _refused(call(live_server, API + "CreateApplication", body), "SerializationException")
    assert live_server.client().list_applications()["applications"] == []


@pytest.mark.parametrize("number", ["1" * 5000, "1" * 20, "1e999", "NaN"])
def test_numbers_out_of_bounds_are_a_serialization_error(
    live_server: LiveServer, number: str
) -> None:
    body = b'{"applicationName":"app","n":%s}' % number.encode()
    _refused(call(live_server, API + "CreateApplication", body), "SerializationException")


@pytest.mark.parametrize("command_id", ["1" * 5000, "1" * 20, "\u00b2", "-1"])
def test_an_impossible_host_command_id_is_a_client_error(
    live_server: LiveServer, command_id: str
) -> None:
    creds, _ = instance_keys(live_server, "web-1")
    body = json.dumps({"HostCommandIdentifier": command_id}).encode()
    answer = call(live_server, AGENT + "PutHostCommandAcknowledgement", body, creds=creds)
    _refused(answer, "ClientException")


def test_an_unexpected_failure_is_an_internal_failure_without_a_traceback(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_call: Any) -> dict[str, Any]:
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setitem(API_OPERATIONS, "ListApplications", broken)
    with caplog.at_level(logging.ERROR, logger="shipyard.server"):
        answer = call(live_server, API + "ListApplications", b"{}")
    assert (answer.status, answer.error) == (500, "InternalFailure")
    assert b"secret detail" not in answer.body
    assert b"Traceback" not in answer.body
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert len(logged) == 1
    assert answer.json()["message"].endswith(f"(request {answer.headers['x-amzn-requestid']})")
