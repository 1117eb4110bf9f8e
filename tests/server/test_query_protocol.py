"""The Query protocol's codec against botocore's own serializer and parser."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import botocore.session
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer

from shipyard.errors import ApiError
from shipyard.server.query_protocol import (
    error_response,
    parse_form,
    result_response,
    signing_service,
)

MODEL = botocore.session.get_session().get_service_model("elbv2")
NAMESPACE = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"


def serialized(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    request = QuerySerializer().serialize_to_request(params, MODEL.operation_model(operation))
    return parse_form(urlencode(request["body"]).encode())


def parsed(operation: str, body: bytes, status: int = 200) -> dict[str, Any]:
    shape = MODEL.operation_model(operation).output_shape
    answer: dict[str, Any] = QueryParser().parse(
        {"body": body, "headers": {}, "status_code": status}, shape
    )
    return answer


def test_nested_lists_and_structures_come_back() -> None:
    form = serialized(
        "ModifyListener",
        {
            "ListenerArn": "arn:l",
            "DefaultActions": [
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": "a", "Weight": 90},
                            {"TargetGroupArn": "b", "Weight": 10},
                        ]
                    },
                }
            ],
        },
    )
    assert form["Action"] == "ModifyListener"
    groups = form["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
    assert groups == [
        {"TargetGroupArn": "a", "Weight": "90"},
        {"TargetGroupArn": "b", "Weight": "10"},
    ]


def test_an_empty_list_is_sent_as_a_bare_name() -> None:
    form = serialized("DescribeTargetGroups", {"Names": []})
    assert form["Names"] == ""


def test_members_past_nine_keep_their_order() -> None:
    names = [f"tg-{n}" for n in range(12)]
    assert serialized("DescribeTargetGroups", {"Names": names})["Names"] == names


def test_answers_parse_with_botocore() -> None:
    created = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    body = result_response(
        "DescribeLoadBalancers",
        NAMESPACE,
        {
            "LoadBalancers": [
                {"LoadBalancerName": "a<b", "CreatedTime": created, "AvailabilityZones": []}
            ]
        },
    ).body
    answer = parsed("DescribeLoadBalancers", bytes(body))
    assert answer["LoadBalancers"][0]["LoadBalancerName"] == "a<b"
    assert answer["LoadBalancers"][0]["CreatedTime"] == created
    empty = result_response("DeleteLoadBalancer", NAMESPACE, {}).body
    assert b"<DeleteLoadBalancerResult/>" in bytes(empty)
    assert "Error" not in parsed("DeleteLoadBalancer", bytes(empty))


def test_errors_carry_the_model_code() -> None:
    response = error_response(ApiError("TargetGroupNotFound", "gone"), NAMESPACE)
    answer = parsed("DescribeTargetGroups", bytes(response.body), 400)
    assert answer["Error"]["Code"] == "TargetGroupNotFound"
    assert answer["Error"]["Message"] == "gone"


def test_signing_service() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/elasticloadbalancing/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    )
    assert signing_service(header) == "elasticloadbalancing"
    assert signing_service("") == ""
