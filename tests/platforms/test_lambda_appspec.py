"""The Lambda appspec: what parses, and the message for each way it can be wrong."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InvalidRevision
from shipyard.platforms.lambda_appspec import LambdaAppSpec, parse

YAML = """\
version: 0.0
Resources:
  - myLambdaFunction:
      Type: AWS::Lambda::Function
      Properties:
        Name: "orders"
        Alias: "live"
        CurrentVersion: "1"
        TargetVersion: "2"
Hooks:
  - BeforeAllowTraffic: "CodeDeployHook_pre"
  - AfterAllowTraffic: "CodeDeployHook_post"
"""


def test_the_user_guide_example_parses() -> None:
    spec = parse(YAML)

    assert spec == LambdaAppSpec(
        "orders",
        "live",
        "1",
        "2",
        {"BeforeAllowTraffic": "CodeDeployHook_pre", "AfterAllowTraffic": "CodeDeployHook_post"},
    )
    assert spec.target_id == "orders:live"


def test_json_lowercase_keys_numbers_and_no_hooks_parse() -> None:
    doc = {
        "version": 0.0,
        "resources": [
            {
                "fn": {
                    "type": "AWS::Lambda::Function",
                    "properties": {
                        "name": "orders",
                        "alias": "live",
                        "currentversion": 3,
                        "targetversion": 4,
                    },
                }
            }
        ],
    }

    spec = parse(json.dumps(doc))

    assert (spec.current_version, spec.target_version, spec.hooks) == ("3", "4", {})


def _without(line: str) -> str:
    return YAML.replace(line + "\n", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: [", "not valid YAML or JSON (line 1)"),
        ("- a list", "the appspec must be a mapping"),
        (YAML.replace("version: 0.0", "version: 1.0"), "appspec version must be 0.0; got 1.0"),
        (_without("version: 0.0"), "the appspec needs Version"),
        ("version: 0.0\nResources: []\n", "Resources must be a list of exactly one resource"),
        (
            YAML.replace("AWS::Lambda::Function", "AWS::ECS::Service"),
            "Resources[0].myLambdaFunction.Type must be AWS::Lambda::Function",
        ),
        (_without('        Alias: "live"'), "Resources[0].Properties needs Alias"),
        (
            _without('        CurrentVersion: "1"'),
            "Resources[0].Properties needs CurrentVersion",
        ),
        (
            YAML.replace('TargetVersion: "2"', 'TargetVersion: "$LATEST"'),
            "Resources[0].Properties.TargetVersion must be a published version number",
        ),
        (
            YAML.replace('TargetVersion: "2"', 'TargetVersion: "1"'),
            "TargetVersion must differ from CurrentVersion (both are 1)",
        ),
        (
            YAML.replace('Name: "orders"', 'Name: "orders;rm"'),
            "Resources[0].Properties.Name is not a valid Lambda name",
        ),
        (
            YAML.replace("BeforeAllowTraffic", "BeforeInstall"),
            "Hooks: 'BeforeInstall' is not a Lambda lifecycle hook",
        ),
        (
            YAML.replace("AfterAllowTraffic", "BeforeAllowTraffic"),
            "Hooks: BeforeAllowTraffic is given twice",
        ),
        (
            YAML.replace('"CodeDeployHook_post"', "[1, 2]"),
            "Hooks.AfterAllowTraffic is not a valid Lambda name",
        ),
    ],
)
def test_each_error_names_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidRevision) as raised:
        parse(text)

    assert message in str(raised.value)


def test_an_oversized_appspec_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidRevision, match="larger than"):
        parse(YAML + "#" * 300_000)
