"""Tables as the migration step that created them made them, frozen (never edit).

Step 1 creates ``schema_v1``; a later step that adds a table creates it from here, so
that what it creates does not change when ``schema.py`` moves on (a later step that
changes such a table alters it, as it would any other).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

functions = Table(
    "functions",
    metadata,
    Column("name", String(64), primary_key=True),
    # Highest version number ever published: numbers are never reused.
    Column("last_version", Integer, nullable=False),
    Column("created", Float, nullable=False),
)

function_versions = Table(
    "function_versions",
    metadata,
    Column("function_name", String(64), primary_key=True),
    Column("version", String(16), primary_key=True),
    Column("doc", JSON, nullable=False),
)

function_aliases = Table(
    "function_aliases",
    metadata,
    Column("function_name", String(64), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("doc", JSON, nullable=False),
)

hook_executions = Table(
    "hook_executions",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("deployment_id", String(64), nullable=False, index=True),
    Column("target_id", String(256), nullable=False),
    Column("event", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created", Float, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("principal_kind", String(16), nullable=False),
    Column("principal_name", String(255), nullable=False),
    Column("action", String(128), nullable=False),
    Column("subject", String(512), nullable=False),  # application/group/deployment named
    Index("ix_audit_time", "time"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("access_key_id", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
)

# Work shared among replicas (store/leases.py): one holder per lease until it expires,
# renewed by the holder. Each live replica also holds "replica:<its id>".
leases = Table(
    "leases",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires", Float, nullable=False),
)

# The latest long poll of each agent, whichever replica holds it (store/agent_polls.py):
# only that poll may claim the agent's commands.
agent_polls = Table(
    "agent_polls",
    metadata,
    Column("instance_name", String(100), primary_key=True),
    Column("poll_id", BigInteger, nullable=False),
    Column("started", Float, nullable=False),
)

# Hosts a provisioner started (shipyard.provision): the node that made them (only its
# provisioner can remove them), and whether any replica has asked for their removal.
provisioned_hosts = Table(
    "provisioned_hosts",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("node", String(128), nullable=False),
    Column("retiring", Boolean, nullable=False),
    Column("created", Float, nullable=False),
)
