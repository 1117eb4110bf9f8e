"""The tables of Shipyard's first release, frozen: what migration step 1 creates.

Never edit this module. The current schema is ``schema.py``; the steps after the first
(``migrations.py``) turn these tables into it. Kept apart so that step 1 makes the same
database whatever the current schema has become, and every later step can do its work
unconditionally. Used by nothing but step 1 (and the tests that migrate from it).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("access_key_id", String(64), primary_key=True),
    Column("secret_access_key", String(128), nullable=False),
    # "admin" (full API), "user" (its role), "instance" (agent protocol, bundle
    # reads), "internal" (the server's own keys) or "function" (a function worker's own
    # key: hook callbacks, reads, Invoke; see server/auth.py)
    Column("principal_type", String(16), nullable=False),
    Column("principal_name", String(255), nullable=False),
    Column("created", Float, nullable=False),
)


applications = Table(
    "applications",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("compute_platform", String(16), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("doc", JSON, nullable=False),
)

# Tags on ARN-addressed resources (TagResource / ListTagsForResource).
resource_tags = Table(
    "resource_tags",
    metadata,
    Column("arn", String(1011), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

revisions = Table(
    "revisions",
    metadata,
    Column("application_name", String(100), primary_key=True),
    # Canonical JSON of the RevisionLocation: identifies one revision.
    Column("revision_key", String(2048), primary_key=True),
    Column("register_time", Float, nullable=False),
    Column("first_used_time", Float),
    Column("last_used_time", Float),
    Column("doc", JSON, nullable=False),  # {"revision": ..., "description": ...}
)

deployment_groups = Table(
    "deployment_groups",
    metadata,
    Column("application_name", String(100), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("doc", JSON, nullable=False),  # deploymentGroupInfo members
)

deployment_configs = Table(
    "deployment_configs",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("create_time", Float, nullable=False),
    Column("doc", JSON, nullable=False),  # deploymentConfigInfo members
)

instances = Table(
    "instances",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("iam_arn", String(1024), nullable=False, unique=True),
    Column("registered", Boolean, nullable=False),
    Column("register_time", Float, nullable=False),
    Column("deregister_time", Float),
    Column("last_seen", Float),  # last agent contact
    Column("doc", JSON, nullable=False),
)

instance_tags = Table(
    "instance_tags",
    metadata,
    Column("instance_name", String(100), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("application_name", String(100), nullable=False),
    Column("group_name", String(100), nullable=False),
    Column("status", String(16), nullable=False),
    Column("create_time", Float, nullable=False),
    Column("complete_time", Float),
    Column("external_id", String(255)),
    Column("active", Boolean, nullable=False),  # not yet terminal
    Column("version", Integer, nullable=False),  # bumped on every write
    # The engine's DeploymentState without its targets (rewritten on every step) and
    # the static deploymentInfo members (written at launch and by rollback links): kept
    # apart so a step does not re-serialise info, whose targetOrder names every host.
    Column("state", JSON, nullable=False),
    Column("info", JSON, nullable=False),
    Index("ix_deployments_group", "application_name", "group_name", "create_time"),
    Index("ix_deployments_active", "active"),
)

targets = Table(
    "targets",
    metadata,
    Column("deployment_id", String(32), primary_key=True),
    Column("target_id", String(255), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("doc", JSON, nullable=False),
)

host_commands = Table(
    "host_commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_name", String(100), nullable=False),
    Column("deployment_id", String(32), nullable=False),
    Column("command_name", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # CommandStatus
    Column("created", Float, nullable=False),
    Column("claimed", Float),  # handed to a poller (may be re-offered if never acknowledged)
    Column("acknowledged", Float),
    Column("completed", Float),
    Index("ix_host_commands_poll", "instance_name", "status"),
)

# Alarms defined in Shipyard (a PromQL expression or an HTTP check), by name; a
# deployment group's alarmConfiguration refers to them by name.
alarms = Table(
    "alarms",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("create_time", Float, nullable=False),
    Column("doc", JSON, nullable=False),  # kind, query/url, threshold, bakeSeconds...
)

# One row per trigger notification to deliver (webhooks), with its outcome.
trigger_deliveries = Table(
    "trigger_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(32), nullable=False),
    Column("application_name", String(100), nullable=False),
    Column("group_name", String(100), nullable=False),
    Column("trigger_name", String(255), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # Pending | Delivered | Failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("last_error", Text),
    Column("created", Float, nullable=False),
    Column("delivered", Float),
    Index("ix_trigger_deliveries_due", "status", "next_attempt"),
)

# Script output of every lifecycle event, in the order the agent sent it: all of it up
# to the server's max_command_output_bytes, else its first half as sent, then one row
# with the last half whose cut_bytes says how much was cut before it.
event_logs = Table(
    "event_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment_id", String(32), nullable=False),
    Column("target_id", String(255), nullable=False),
    Column("event", String(64), nullable=False),
    Column("chunk", Text, nullable=False),
    Column("created", Float, nullable=False),
    Index("ix_event_logs_target", "deployment_id", "target_id", "id"),
)
