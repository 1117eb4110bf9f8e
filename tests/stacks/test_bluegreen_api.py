"""The blue/green hook through the CloudFormation API: ValidateTemplate accepts the
example and names its parameters; ValidateTemplate and CreateStack refuse a malformed
hook with CloudFormation's message, and nothing is created."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.stacks.test_bluegreen import EXAMPLE

BODY = EXAMPLE.read_text()


def test_the_example_validates(cfn: Any) -> None:
    answer = cfn.validate_template(TemplateBody=BODY)
    names = {p["ParameterKey"] for p in answer["Parameters"]}
    assert names == {"Version", "Image", "ProdPort", "TestPort"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("ServiceRole: CodeDeployECSRole", "ServiceRole: ''"),
            'Failed to parse the "Hooks" section for the provided template. Please ensure '
            "the AWS::CodeDeploy::BlueGreen Hook matches the expected schema: ServiceRole "
            "is required",
        ),
        (
            ("DeploymentController: {Type: EXTERNAL}", "DeploymentController: {Type: ECS}"),
            'Failed to parse the template resource "Resources->Service"',
        ),
        (
            ("StepPercentage: 20", "StepPercentage: 5"),
            "TrafficRoutingConfig.TimeBasedCanary.StepPercentage must be a whole number",
        ),
        (
            ("Transform: AWS::CodeDeployBlueGreen\n", ""),
            "the AWS::CodeDeploy::BlueGreen hook needs Transform: AWS::CodeDeployBlueGreen",
        ),
    ],
)
@pytest.mark.parametrize("operation", ["ValidateTemplate", "CreateStack"])
def test_a_malformed_hook_is_refused(
    cfn: Any, change: tuple[str, str], message: str, operation: str
) -> None:
    old, new = change
    assert old in BODY
    body = BODY.replace(old, new)
    with pytest.raises(ClientError) as refused:
        if operation == "ValidateTemplate":
            cfn.validate_template(TemplateBody=body)
        else:
            cfn.create_stack(StackName="hooked", TemplateBody=body)
    error = refused.value.response["Error"]
    assert (error["Code"], message in error["Message"]) == ("ValidationError", True), error
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName="hooked")
