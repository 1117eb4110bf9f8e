"""The template engine as tables: parsing, intrinsics, conditions, parameters,
dependency order, and the refusals with CloudFormation's messages."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from shipyard.stacks import intrinsics
from shipyard.stacks.errors import TemplateError
from shipyard.stacks.intrinsics import Scope
from shipyard.stacks.parameters import Given, pseudo_values, resolve_parameters
from shipyard.stacks.template import load
from shipyard.stacks.text import parse

PSEUDO = pseudo_values("eu-west-1", "123456789012", "web", "arn:stack/web/1")


class Resources:
    """Resources that exist: Ref gives the name, GetAtt ``name.attr``."""

    def ref(self, logical_id: str) -> Any:
        return f"phys-{logical_id}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"{logical_id}.{attribute}"


def evaluate(value: Any, **parameters: Any) -> Any:
    conditions = {"Yes": True, "No": False}
    return intrinsics.resolve(value, Scope({**PSEUDO, **parameters}, conditions, Resources()))


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("!Ref Env", {"Ref": "Env"}),
        ("!GetAtt Fn.Arn", {"Fn::GetAtt": ["Fn", "Arn"]}),
        ("!GetAtt [Fn, Arn]", {"Fn::GetAtt": ["Fn", "Arn"]}),
        ("!Sub 'x-${Env}'", {"Fn::Sub": "x-${Env}"}),
        ("!Join ['-', [a, !Ref Env]]", {"Fn::Join": ["-", ["a", {"Ref": "Env"}]]}),
        ("!If [Cond, a, b]", {"Fn::If": ["Cond", "a", "b"]}),
        ("!Equals [!Ref Env, prod]", {"Fn::Equals": [{"Ref": "Env"}, "prod"]}),
        ("!Not [!Condition Yes]", {"Fn::Not": [{"Condition": "Yes"}]}),
        ("2010-09-09", "2010-09-09"),  # dates stay strings
    ],
)
def test_yaml_short_forms(yaml_text: str, expected: Any) -> None:
    assert parse(f"Value: {yaml_text}\n")["Value"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "Env"}, "prod"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Ref": "AWS::StackName"}, "web"),
        ({"Ref": "Fn"}, "phys-Fn"),
        ({"Fn::GetAtt": ["Fn", "Arn"]}, "Fn.Arn"),
        ({"Fn::GetAtt": "Fn.Arn"}, "Fn.Arn"),
        (
            {"Fn::Sub": "${AWS::AccountId}:${Env}:${Fn}:${Fn.Arn}"},
            "123456789012:prod:phys-Fn:Fn.Arn",
        ),
        ({"Fn::Sub": "${!Literal}-${Env}"}, "${Literal}-prod"),
        ({"Fn::Sub": ["${A}-${B}", {"A": "x", "B": {"Ref": "Env"}}]}, "x-prod"),
        ({"Fn::Join": [",", ["a", {"Ref": "Env"}, 3]]}, "a,prod,3"),
        ({"Fn::Select": ["1", ["a", "b", "c"]]}, "b"),
        ({"Fn::Select": [0, {"Fn::Split": ["|", "x|y"]}]}, "x"),
        ({"Fn::Split": [",", {"Ref": "Env"}]}, ["prod"]),
        ({"Fn::If": ["Yes", "a", "b"]}, "a"),
        ({"Fn::If": ["No", "a", "b"]}, "b"),
        ({"Fn::Equals": [{"Ref": "Env"}, "prod"]}, True),
        ({"Fn::Equals": [1, "1"]}, True),
        ({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}, True),
        ({"Fn::And": [{"Condition": "Yes"}, {"Condition": "No"}]}, False),
        ({"Fn::Or": [{"Condition": "Yes"}, {"Condition": "No"}]}, True),
        ({"A": {"Ref": "AWS::NoValue"}, "B": 1}, {"B": 1}),
        ([1, {"Fn::If": ["No", 2, {"Ref": "AWS::NoValue"}]}, 3], [1, 3]),
        ({"Fn::Base64": "hi"}, "aGk="),
    ],
)
def test_intrinsics(value: Any, expected: Any) -> None:
    assert evaluate(value, Env="prod") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::Select": [5, ["a"]]}, "Fn::Select cannot select nonexistent value"),
        ({"Fn::If": ["Maybe", "a", "b"]}, "unresolved condition dependency Maybe in Fn::If"),
        ({"Fn::Join": ["-"]}, "Fn::Join requires a list of 2 arguments"),
        ({"Fn::Not": [{"Fn::Join": ["", ["a"]]}]}, "must resolve to true or false"),
        ({"Fn::Bogus": 1}, "Unrecognized function 'Fn::Bogus'"),
        ({"Fn::And": [{"Condition": "Yes"}]}, "between 2 and 10 conditions"),
    ],
)
def test_intrinsic_refusals(value: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        evaluate(value)


FUNCTION = """\
  {name}:
    Type: AWS::Lambda::Function
    Properties:
      Role: arn:aws:iam::123456789012:role/r
      Handler: app.handler
      Runtime: python3.11
      Code: {{S3Bucket: b, S3Key: k}}
"""


def template(resources: str, extra: str = "") -> str:
    return textwrap.dedent(extra) + "Resources:\n" + resources


def named_by(value: str) -> str:
    """A version V whose FunctionName is ``value``."""
    return f"  V:\n    Type: AWS::Lambda::Version\n    Properties:\n      FunctionName: {value}\n"


def version(name: str, function: str, depends: str = "") -> str:
    line = f"    DependsOn: {depends}\n" if depends else ""
    return (
        f"  {name}:\n    Type: AWS::Lambda::Version\n{line}"
        f"    Properties:\n      FunctionName: !Ref {function}\n"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Resources: {}\n", "At least one Resources member must be defined."),
        ("Resourcez: {}\n", r"Invalid template property or properties \[Resourcez\]"),
        (
            "Resources:\n  A:\n    Type: AWS::Foo::Bar\n",
            r"Unrecognized resource types: \[AWS::Foo::Bar\]",
        ),
        (
            "Resources:\n  A:\n    Properties: {}\n",
            "Every Resources object must contain a Type member.",
        ),
        ("Resources:\n  A-b:\n    Type: AWS::Lambda::Version\n", "non alphanumeric"),
        ("Resources: [\n", "YAML not well-formed"),
        ('{"Resources": ', "JSON not well-formed"),
        (
            template(version("V", "Missing")),
            r"Unresolved resource dependencies \[Missing\] in the Resources block",
        ),
        (
            template(version("V", "Fn", depends="Nope") + FUNCTION.format(name="Fn")),
            r"Unresolved resource dependencies \[Nope\]",
        ),
        (
            template(FUNCTION.format(name="Fn") + named_by("!GetAtt Fn.Colour")),
            "resource Fn does not support attribute type Colour in Fn::GetAtt",
        ),
        (
            template(named_by("!GetAtt Ghost.Arn")),
            "Fn::GetAtt references undefined resource Ghost",
        ),
        (
            template(named_by("!Sub '${Ghost}'")),
            r"Unresolved resource dependencies \[Ghost\]",
        ),
        (
            template(version("A", "B") + version("B", "A")),
            r"Circular dependency between resources: \[A, B\]",
        ),
        (
            template(version("A", "B") + version("B", "C") + version("C", "A") + version("D", "A")),
            r"Circular dependency between resources: \[A, B, C\]",
        ),
        (
            template(FUNCTION.format(name="Fn"), "Conditions:\n  C: !Equals [!Ref Fn, x]\n"),
            "Cannot reference resources in the Conditions block",
        ),
        (
            template(FUNCTION.format(name="Fn") + "    Condition: Nope\n"),
            r"Unresolved condition dependencies \[Nope\]",
        ),
        (
            template(FUNCTION.format(name="Fn"), "Outputs:\n  O:\n    Value: !Ref Gone\n"),
            r"Unresolved resource dependencies \[Gone\] in the Outputs block",
        ),
    ],
)
def test_template_refusals(body: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load(body)


def test_creation_order_follows_references_and_depends_on() -> None:
    body = template(
        version("V", "Fn", depends="Other")
        + FUNCTION.format(name="Other")
        + FUNCTION.format(name="Fn")
        + "  Al:\n    Type: AWS::Lambda::Alias\n    Properties:\n"
        "      Name: live\n      FunctionName: !Ref Fn\n      FunctionVersion: !GetAtt V.Version\n"
    )
    assert load(body).order({}) == ["Other", "Fn", "V", "Al"]


def test_conditions_drop_resources_and_choose_values() -> None:
    body = template(
        FUNCTION.format(name="Fn") + "    Condition: IsProd\n" + FUNCTION.format(name="Always"),
        """\
        Parameters:
          Env: {Type: String, AllowedValues: [prod, test], Default: test}
        Conditions:
          IsProd: !Equals [!Ref Env, prod]
          NotProd: !Not [!Condition IsProd]
        """,
    )
    loaded = load(body)
    for env, expected in (("prod", ["Fn", "Always"]), ("test", ["Always"])):
        conditions = loaded.conditions({**PSEUDO, "Env": env})
        assert conditions["NotProd"] is (env != "prod")
        assert loaded.order(conditions) == expected


DECLARED = {
    "Env": {"Type": "String", "AllowedValues": ["prod", "test"], "Default": "test"},
    "Count": {"Type": "Number", "MinValue": 1, "MaxValue": 5},
    "Names": {"Type": "CommaDelimitedList", "Default": "a,b"},
}


@pytest.mark.parametrize(
    ("given", "previous", "expected"),
    [
        ([Given("Count", "2")], {}, {"Env": "test", "Count": "2", "Names": "a,b"}),
        (
            [Given("Count", use_previous=True), Given("Env", "prod")],
            {"Count": "4"},
            {"Env": "prod", "Count": "4", "Names": "a,b"},
        ),
    ],
)
def test_parameters(given: list[Given], previous: dict[str, str], expected: dict[str, str]) -> None:
    assert resolve_parameters(DECLARED, given, previous) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([], r"Parameters: \[Count\] must have values"),
        (
            [Given("Count", "2"), Given("Extra", "1")],
            r"Parameters: \[Extra\] do not exist in the template",
        ),
        ([Given("Count", "two")], "Parameter 'Count' must be a number."),
        ([Given("Count", "9")], "Parameter 'Count' must be a number not greater than 5"),
        (
            [Given("Count", "2"), Given("Env", "dev")],
            "Parameter 'Env' must be one of AllowedValues",
        ),
        ([Given("Count", use_previous=True)], "Cannot specify usePreviousValue"),
    ],
)
def test_parameter_refusals(given: list[Given], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolve_parameters(DECLARED, given, {})
