"""A request body's nesting is bounded (json_body.MAX_DEPTH), whether the bracket count
short-cuts the walk or not."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import ApiError
from shipyard.server.json_body import MAX_DEPTH, parse_object


def _nested(levels: int) -> bytes:
    value: object = 1
    for _ in range(levels - 1):
        value = [value]
    return json.dumps({"a": value}).encode()


def test_a_body_nesting_deeper_than_the_bound_is_refused() -> None:
    with pytest.raises(ApiError) as refused:
        parse_object(_nested(MAX_DEPTH + 1))
    assert refused.value.name == "SerializationException"
    assert f"deeper than {MAX_DEPTH}" in str(refused.value)


def test_bodies_within_the_bound_pass_with_few_or_many_brackets() -> None:
    assert parse_object(_nested(MAX_DEPTH))["a"] is not None
    wide = {"items": [{"n": n} for n in range(3 * MAX_DEPTH)]}  # many brackets, depth 3
    assert parse_object(json.dumps(wide).encode()) == wide
    in_text = {"message": "{[" * MAX_DEPTH}  # brackets in a string are no nesting
    assert parse_object(json.dumps(in_text).encode()) == in_text
