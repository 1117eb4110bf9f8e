"""The resource store functions the engine calls, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from shipyard.secretbox import AesGcmBox, new_key
from shipyard.store import Database, open_database, resources, schema
from shipyard.store.groups import insert_deployment_group, save_deployment_group
from shipyard.store.instances import add_instance_tags, deregister_instance, register_instance
from shipyard.store.revisions import get_revision, list_revisions, register_revision
from shipyard.store.tags import put_resource_tags, resource_tags

REGION = "us-east-1"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = open_database(db_url, AesGcmBox([new_key()]))
    yield database
    database.close()


def add_app(db: Database, name: str = "app") -> None:
    with db.tx() as conn:
        resources.insert_application(
            conn, name=name, application_id=f"id-{name}", compute_platform="Server", now=10.0
        )


def add_group(db: Database, app: str = "app", name: str = "g", **members: Any) -> None:
    info = {
        "applicationName": app,
        "deploymentGroupName": name,
        "deploymentGroupId": f"gid-{app}-{name}",
        "deploymentConfigName": "CodeDeployDefault.OneAtATime",
        **members,
    }
    with db.tx() as conn:
        insert_deployment_group(conn, info)


def add_instance(db: Database, name: str, **tags: str) -> None:
    arn = f"arn:aws:iam::000000000000:user/{name}"
    with db.tx() as conn:
        register_instance(
            conn, name=name, arn_member="iamUserArn", iam_arn=arn, instance_arn=name, now=1.0
        )
        add_instance_tags(conn, [name], [{"Key": k, "Value": v} for k, v in tags.items()])


def s3(key: str) -> dict[str, Any]:
    return {"revisionType": "S3", "s3Location": {"bucket": "b", "key": key, "bundleType": "zip"}}


def test_application_info(db: Database) -> None:
    add_app(db)
    with db.tx() as conn:
        assert resources.get_application(conn, "app") == {
            "applicationId": "id-app",
            "applicationName": "app",
            "createTime": 10.0,
            "linkedToGitHub": False,
            "computePlatform": "Server",
        }
        assert resources.get_application(conn, "other") is None


def test_group_doc_merge_and_rename_and_delete(db: Database) -> None:
    add_app(db)
    add_group(db, serviceRoleArn="role")
    last = {"deploymentId": "d-AAAAAAAAA", "status": "Succeeded", "createTime": 5.0}
    with db.tx() as conn:
        resources.update_deployment_group_doc(conn, "app", "g", {"lastSuccessfulDeployment": last})
        resources.update_deployment_group_doc(conn, "app", "gone", {"x": 1})  # no-op
        group = resources.get_deployment_group(conn, "app", "g")
    assert group is not None
    assert group["lastSuccessfulDeployment"] == last
    assert group["serviceRoleArn"] == "role"

    with db.tx() as conn:
        put_resource_tags(
            conn,
            f"arn:aws:codedeploy:{REGION}:000000000000:application:app",
            [{"Key": "k", "Value": "v"}],
        )
        register_revision(conn, "app", s3("a.zip"), None, 1.0)
        resources.rename_application(conn, "app", "renamed", REGION)
    with db.tx() as conn:
        assert resources.get_application(conn, "app") is None
        moved = resources.get_deployment_group(conn, "renamed", "g")
        assert moved is not None and moved["applicationName"] == "renamed"
        assert get_revision(conn, "renamed", s3("a.zip")) is not None
        arn = f"arn:aws:codedeploy:{REGION}:000000000000:application:renamed"
        assert resource_tags(conn, arn) == [{"Key": "k", "Value": "v"}]
        resources.delete_application(conn, "renamed", REGION)
    with db.tx() as conn:
        assert resources.get_deployment_group(conn, "renamed", "g") is None
        assert get_revision(conn, "renamed", s3("a.zip")) is None
        assert resource_tags(conn, arn) == []


def test_renames_carry_the_deployments_along(db: Database) -> None:
    add_app(db)
    add_group(db)
    with db.tx() as conn:
        conn.execute(
            schema.deployments.insert().values(
                id="d-AAAAAAAAA",
                application_name="app",
                group_name="g",
                status="InProgress",
                create_time=1.0,
                active=True,
                version=1,
                state={},
                info={},
            )
        )
        resources.rename_application(conn, "app", "app2", REGION)
        group = resources.get_deployment_group(conn, "app2", "g")
        assert group is not None
        save_deployment_group(conn, "app2", "g", {**group, "deploymentGroupName": "g2"})
    with db.tx() as conn:
        d = schema.deployments.c
        row = conn.execute(select(d.application_name, d.group_name)).one()
    assert tuple(row) == ("app2", "g2")


def test_deployment_configs(db: Database) -> None:
    with db.tx() as conn:
        one = resources.get_deployment_config(conn, "CodeDeployDefault.OneAtATime")
        assert one is not None
        assert one["minimumHealthyHosts"] == {"type": "MOST_CONCURRENCY", "value": 1}
        one["minimumHealthyHosts"]["value"] = 99  # callers get copies
        again = resources.get_deployment_config(conn, "CodeDeployDefault.OneAtATime")
        assert again is not None and again["minimumHealthyHosts"]["value"] == 1
        assert resources.get_deployment_config(conn, "Custom") is None


def test_instances_for_group_filters_and_tag_sets(db: Database) -> None:
    add_instance(db, "web-1", role="web", env="prod")
    add_instance(db, "web-2", role="web", env="test")
    add_instance(db, "db-1", role="db", env="prod")
    add_instance(db, "bare")
    add_instance(db, "retired", role="web", env="prod")
    with db.tx() as conn:
        deregister_instance(conn, "retired", 2.0)

    def chosen(**group: Any) -> list[str]:
        with db.tx() as conn:
            return resources.instances_for_group(conn, group)

    web = {"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}
    prod = {"Value": "prod", "Type": "VALUE_ONLY"}
    assert chosen() == []
    assert chosen(onPremisesInstanceTagFilters=[web]) == ["web-1", "web-2"]
    # Filters in one list: any of them (OR).
    assert chosen(onPremisesInstanceTagFilters=[web, prod]) == ["db-1", "web-1", "web-2"]
    # A tag set: one filter of every list (AND).
    tag_set = {"onPremisesTagSetList": [[web], [prod]]}
    assert chosen(onPremisesTagSet=tag_set) == ["web-1"]
    assert chosen(onPremisesInstanceTagFilters=[{"Key": "env", "Type": "KEY_ONLY"}]) == [
        "db-1",
        "web-1",
        "web-2",
    ]
    # Type may be left out: it follows from the members given.
    assert chosen(onPremisesInstanceTagFilters=[{"Key": "role", "Value": "db"}]) == ["db-1"]


def test_instance_by_arn_only_finds_registered(db: Database) -> None:
    add_instance(db, "host")
    arn = "arn:aws:iam::000000000000:user/host"
    with db.tx() as conn:
        assert resources.instance_by_arn(conn, arn) == "host"
        assert resources.instance_by_arn(conn, "arn:aws:iam::000000000000:user/x") is None
        deregister_instance(conn, "host", 3.0)
        assert resources.instance_by_arn(conn, arn) is None


def test_record_revision_use(db: Database) -> None:
    add_app(db)
    with db.tx() as conn:
        register_revision(conn, "app", s3("registered.zip"), "desc", 1.0)
        resources.record_revision_use(conn, "app", s3("registered.zip"), 5.0)
        resources.record_revision_use(conn, "app", s3("registered.zip"), 9.0)
        resources.record_revision_use(conn, "app", s3("new.zip"), 7.0)
    with db.tx() as conn:
        known = get_revision(conn, "app", s3("registered.zip"))
        fresh = get_revision(conn, "app", s3("new.zip"))
        by_last_use = list_revisions(conn, "app", sort_by="lastUsedTime", descending=True)
    assert known is not None and fresh is not None
    assert known["revisionInfo"] == {
        "description": "desc",
        "deploymentGroups": [],
        "registerTime": 1.0,
        "firstUsedTime": 5.0,
        "lastUsedTime": 9.0,
    }
    assert fresh["revisionInfo"]["registerTime"] == 7.0
    assert fresh["revisionInfo"]["firstUsedTime"] == 7.0
    assert by_last_use == [s3("registered.zip"), s3("new.zip")]
