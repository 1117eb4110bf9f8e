"""The Lambda platform's checks at CreateDeployment: group, config and revision."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from shipyard.errors import (
    ConfigForOtherPlatform,
    InvalidRevision,
    MissingRevision,
    UnsupportedSetting,
)
from shipyard.platforms import get_platform
from shipyard.platforms.lambda_ import LambdaPlatform
from tests.lambda_support import LAMBDA_STYLE, appspec

PLATFORM = LambdaPlatform()
CONTENT = appspec("orders", "live", "1", "2")


def _check_group(**group: Any) -> None:
    PLATFORM.check_deployment(
        {"deploymentStyle": LAMBDA_STYLE, **group},
        group.pop("target_instances", None),
        has_router=False,
        defined_alarms=set(),
    )


def test_it_is_registered_under_its_compute_platform() -> None:
    assert isinstance(get_platform("Lambda"), LambdaPlatform)


def test_a_lambda_group_needs_blue_green_with_traffic_control() -> None:
    _check_group()
    in_place = {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"}
    with pytest.raises(UnsupportedSetting, match="BLUE_GREEN WITH_TRAFFIC_CONTROL"):
        _check_group(deploymentStyle=in_place)


def test_instances_alarms_and_sns_are_refused() -> None:
    with pytest.raises(UnsupportedSetting, match="takes no targetInstances"):
        PLATFORM.check_deployment(
            {"deploymentStyle": LAMBDA_STYLE},
            {"tagFilters": [{"Key": "a"}]},
            has_router=False,
            defined_alarms=set(),
        )
    alarms = {"enabled": True, "alarms": [{"name": "nope"}]}
    with pytest.raises(UnsupportedSetting, match="not defined on this server"):
        _check_group(alarmConfiguration=alarms)
    sns = [{"triggerName": "t", "triggerTargetArn": "arn:aws:sns:us-east-1:1:t"}]
    with pytest.raises(UnsupportedSetting, match="webhook"):
        _check_group(triggerConfigurations=sns)


def test_only_a_lambda_config_is_accepted() -> None:
    PLATFORM.check_config({"deploymentConfigName": "x", "computePlatform": "Lambda"})
    with pytest.raises(ConfigForOtherPlatform):
        PLATFORM.check_config({"deploymentConfigName": "CodeDeployDefault.OneAtATime"})


@pytest.mark.parametrize("kind", ["AppSpecContent", "String"])
def test_inline_appspecs_with_or_without_their_sha256(kind: str) -> None:
    member = "appSpecContent" if kind == "AppSpecContent" else "string"
    digest = hashlib.sha256(CONTENT.encode()).hexdigest()
    for given in ({"content": CONTENT}, {"content": CONTENT, "sha256": digest}):
        stored = PLATFORM.check_revision({"revisionType": kind, member: given}, lambda _: True)
        assert stored == {"revisionType": kind, member: given}
    wrong = {"content": CONTENT, "sha256": "ab" * 32}
    with pytest.raises(InvalidRevision, match=f"revision.{member}.sha256 does not match"):
        PLATFORM.check_revision({"revisionType": kind, member: wrong}, lambda _: True)


@pytest.mark.parametrize(
    ("revision", "error", "words"),
    [
        ({"revisionType": "GitHub"}, InvalidRevision, "AppSpecContent, String or S3 for Lambda"),
        ({"revisionType": "AppSpecContent"}, InvalidRevision, "appSpecContent.content must be"),
        (
            {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}},
            InvalidRevision,
            "bundleType must be YAML or JSON",
        ),
        (
            {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k", "bundleType": "YAML"}},
            MissingRevision,
            "No appspec at s3://b/k",
        ),
    ],
)
def test_revisions_refused(revision: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        PLATFORM.check_revision(revision, lambda _: False)


def test_an_s3_appspec_is_read_from_the_store() -> None:
    revision = {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "a.yml"}}

    spec = PLATFORM.appspec(revision, lambda loc: CONTENT if loc["key"] == "a.yml" else None)

    assert spec.target_id == "orders:live"
    with pytest.raises(MissingRevision):
        PLATFORM.appspec(revision, lambda _: None)
