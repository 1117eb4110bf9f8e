"""On-premises instances: registration rules, tags, listing, deregistration and the
credentials Shipyard issues to an instance's agent."""

from __future__ import annotations

from typing import Any

import boto3

from tests.conftest import LiveServer
from tests.server.crud_support import aws_cli, error_code, raw_error, unique
from tests.support import raw_call


def session_arn(name: str) -> str:
    return f"arn:aws:sts::000000000000:assumed-role/CodeDeployInstanceRole/{name}"


def user_arn(name: str) -> str:
    return f"arn:aws:iam::000000000000:user/codedeploy/{name}"


def register(cd: Any, **tags: str) -> str:
    name = unique("host")
    cd.register_on_premises_instance(instanceName=name, iamSessionArn=session_arn(name))
    if tags:
        cd.add_tags_to_on_premises_instances(
            instanceNames=[name], tags=[{"Key": k, "Value": v} for k, v in tags.items()]
        )
    return name


def test_register_and_get(server: LiveServer, cd: Any) -> None:
    name = register(cd)
    got = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert got["instanceName"] == name
    assert got["iamSessionArn"] == session_arn(name)
    assert got["instanceArn"] == (
        f"arn:aws:codedeploy:{server.region}:000000000000:instance/{name}"
    )
    assert got["tags"] == []
    assert "deregisterTime" not in got
    other = unique("host")
    cd.register_on_premises_instance(instanceName=other, iamUserArn=user_arn(other))
    assert cd.get_on_premises_instance(instanceName=other)["instanceInfo"]["iamUserArn"] == (
        user_arn(other)
    )


def test_register_errors(server: LiveServer, cd: Any) -> None:
    name = register(cd)
    fresh = unique("host")
    assert error_code(
        cd.register_on_premises_instance, instanceName=name, iamSessionArn=session_arn(fresh)
    ) == ("InstanceNameAlreadyRegisteredException")
    assert error_code(
        cd.register_on_premises_instance, instanceName=fresh, iamSessionArn=session_arn(name)
    ) == ("IamSessionArnAlreadyRegisteredException")
    user = unique("host")
    cd.register_on_premises_instance(instanceName=user, iamUserArn=user_arn(user))
    assert error_code(
        cd.register_on_premises_instance, instanceName=fresh, iamUserArn=user_arn(user)
    ) == ("IamUserArnAlreadyRegisteredException")
    assert error_code(
        cd.register_on_premises_instance,
        instanceName=fresh,
        iamSessionArn=session_arn(fresh),
        iamUserArn=user_arn(fresh),
    ) == ("MultipleIamArnsProvidedException")
    assert error_code(cd.register_on_premises_instance, instanceName=fresh) == (
        "IamArnRequiredException"
    )
    assert error_code(
        cd.register_on_premises_instance, instanceName=fresh, iamSessionArn="arn:aws:iam::1:x"
    ) == ("InvalidIamSessionArnException")
    assert error_code(
        cd.register_on_premises_instance, instanceName=fresh, iamUserArn=session_arn(fresh)
    ) == ("InvalidIamUserArnException")
    assert error_code(
        cd.register_on_premises_instance, instanceName="bad name", iamUserArn=user_arn(fresh)
    ) == ("InvalidInstanceNameException")
    assert raw_error(server, "RegisterOnPremisesInstance", {"iamUserArn": user_arn(fresh)}) == (
        "InstanceNameRequiredException"
    )


def test_get_and_batch_get(server: LiveServer, cd: Any) -> None:
    first, second = register(cd), register(cd)
    assert error_code(cd.get_on_premises_instance, instanceName=unique("nobody")) == (
        "InstanceNotRegisteredException"
    )
    infos = cd.batch_get_on_premises_instances(instanceNames=[first, "nobody", second])
    assert [i["instanceName"] for i in infos["instanceInfos"]] == [first, second]
    assert error_code(
        cd.batch_get_on_premises_instances, instanceNames=[f"h{i}" for i in range(26)]
    ) == ("BatchLimitExceededException")
    assert raw_error(server, "BatchGetOnPremisesInstances", {}) == ("InstanceNameRequiredException")


def test_tags_add_replace_remove(cd: Any) -> None:
    name = register(cd, role="web", env="prod")
    cd.add_tags_to_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "env", "Value": "staging"}]
    )
    tags = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]["tags"]
    assert tags == [{"Key": "env", "Value": "staging"}, {"Key": "role", "Value": "web"}]
    cd.remove_tags_from_on_premises_instances(
        instanceNames=[name], tags=[{"Key": "role", "Value": "web"}, {"Key": "env", "Value": "x"}]
    )
    tags = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]["tags"]
    assert tags == [{"Key": "env", "Value": "staging"}]  # env's value did not match


def test_tag_errors(server: LiveServer, cd: Any) -> None:
    name = register(cd)
    assert error_code(
        cd.add_tags_to_on_premises_instances, instanceNames=[name], tags=[{"Value": "only"}]
    ) == ("InvalidTagException")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    assert error_code(cd.add_tags_to_on_premises_instances, instanceNames=[name], tags=eleven) == (
        "TagLimitExceededException"
    )
    cd.add_tags_to_on_premises_instances(instanceNames=[name], tags=eleven[:10])
    assert error_code(
        cd.add_tags_to_on_premises_instances,
        instanceNames=[name],
        tags=[{"Key": "one-more", "Value": "v"}],
    ) == ("TagLimitExceededException")
    assert error_code(
        cd.add_tags_to_on_premises_instances,
        instanceNames=[unique("nobody")],
        tags=[{"Key": "k", "Value": "v"}],
    ) == ("InstanceNotRegisteredException")
    assert error_code(
        cd.add_tags_to_on_premises_instances,
        instanceNames=[f"h{i}" for i in range(101)],
        tags=[{"Key": "k", "Value": "v"}],
    ) == ("InstanceLimitExceededException")
    assert raw_error(server, "AddTagsToOnPremisesInstances", {"instanceNames": [name]}) == (
        "TagRequiredException"
    )
    assert raw_error(
        server, "RemoveTagsFromOnPremisesInstances", {"tags": [{"Key": "k", "Value": "v"}]}
    ) == ("InstanceNameRequiredException")


def test_list_by_status_and_tags(cd: Any) -> None:
    marker = unique("marker")
    web = register(cd, role=marker)
    db = register(cd, tier=marker)
    gone = register(cd, role=marker)
    cd.deregister_on_premises_instance(instanceName=gone)

    def listed(**kwargs: Any) -> list[str]:
        return list(cd.list_on_premises_instances(**kwargs)["instanceNames"])

    by_value = [{"Value": marker, "Type": "VALUE_ONLY"}]
    assert listed(tagFilters=by_value) == sorted([web, db, gone])
    assert listed(tagFilters=by_value, registrationStatus="Registered") == sorted([web, db])
    assert listed(tagFilters=by_value, registrationStatus="Deregistered") == [gone]
    role = [{"Key": "role", "Value": marker, "Type": "KEY_AND_VALUE"}]
    assert listed(tagFilters=role, registrationStatus="Registered") == [web]
    assert error_code(cd.list_on_premises_instances, registrationStatus="Gone") == (
        "InvalidRegistrationStatusException"
    )
    assert error_code(
        cd.list_on_premises_instances, tagFilters=[{"Key": "k", "Type": "SOMETIMES"}]
    ) == ("InvalidTagFilterException")


def instance_client(server: LiveServer, key_id: str, secret: str) -> Any:
    return boto3.client(
        "codedeploy",
        endpoint_url=server.url,
        region_name=server.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def issue(server: LiveServer, name: str) -> dict[str, Any]:
    status, body = raw_call(server, "ShipyardIssueInstanceCredentials", {"instanceName": name})
    assert status == 200, body
    return body


def test_issued_credentials_are_revoked_by_reissue_and_deregistration(
    server: LiveServer, cd: Any
) -> None:
    name = register(cd)
    first = issue(server, name)
    assert first["hostIdentifier"] == session_arn(name)
    agent = instance_client(server, first["accessKeyId"], first["secretAccessKey"])
    # A recognised instance key may not use the admin API.
    assert error_code(agent.list_applications) == "AccessDeniedException"

    second = issue(server, name)
    assert error_code(agent.list_applications) == "UnrecognizedClientException"
    agent = instance_client(server, second["accessKeyId"], second["secretAccessKey"])
    assert error_code(agent.list_applications) == "AccessDeniedException"

    cd.deregister_on_premises_instance(instanceName=name)
    assert error_code(agent.list_applications) == "UnrecognizedClientException"
    got = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert got["deregisterTime"] >= got["registerTime"]
    assert raw_error(server, "ShipyardIssueInstanceCredentials", {"instanceName": name}) == (
        "InstanceNotRegisteredException"
    )


def test_reregistering_a_deregistered_name(cd: Any) -> None:
    name = register(cd, role="old")
    cd.deregister_on_premises_instance(instanceName=name)
    # Its ARN stays taken by the old record ...
    assert error_code(
        cd.register_on_premises_instance,
        instanceName=unique("host"),
        iamSessionArn=session_arn(name),
    ) == ("IamSessionArnAlreadyRegisteredException")
    # ... but the name can be registered afresh.
    cd.register_on_premises_instance(instanceName=name, iamUserArn=user_arn(name))
    got = cd.get_on_premises_instance(instanceName=name)["instanceInfo"]
    assert got["iamUserArn"] == user_arn(name)
    assert "iamSessionArn" not in got
    assert "deregisterTime" not in got
    assert got["tags"] == []
    cd.deregister_on_premises_instance(instanceName=unique("nobody"))  # no error


def test_aws_cli_register_and_list(server: LiveServer) -> None:
    name = unique("cli")
    aws_cli(
        server,
        "register-on-premises-instance",
        "--instance-name",
        name,
        "--iam-session-arn",
        session_arn(name),
    )
    aws_cli(
        server,
        "add-tags-to-on-premises-instances",
        "--instance-names",
        name,
        "--tags",
        "Key=role,Value=cli",
    )
    listed = aws_cli(
        server,
        "list-on-premises-instances",
        "--tag-filters",
        "Key=role,Value=cli,Type=KEY_AND_VALUE",
    )
    assert listed["instanceNames"] == [name]
