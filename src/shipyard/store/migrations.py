"""The one portable migration sequence. Append, never edit a released step.

Each step is given the connection and the server's SecretBox (for steps that rewrite
stored secrets). Step 1 creates the first release's tables (``schema_v1``, frozen) and
each later step does its own change unconditionally: a database at version k has
exactly the tables steps 1..k made, so step k+1 finds what it expects. Tables a step
adds come from ``step_tables`` (frozen too), never from the current ``schema``.
tests/store/test_migrations.py migrates from every earlier version on both databases.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from shipyard.secretbox import SecretBox
from shipyard.store import schema, schema_v1, step_tables
from shipyard.store.secret_rows import reseal_all


def _v1_initial(conn: Connection, _box: SecretBox) -> None:
    """The first release's tables."""
    schema_v1.metadata.create_all(conn)


def _v2_seal_secrets(conn: Connection, box: SecretBox) -> None:
    """Secrets were stored in plaintext before: seal them in place."""
    reseal_all(conn, box)


def _add_column(conn: Connection, table: str, column: str, ddl: str) -> None:
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _v3_output_caps(conn: Connection, _box: SecretBox) -> None:
    """Script output is capped per host command (store.deployments.append_log)."""
    _add_column(conn, "host_commands", "output_bytes", "BIGINT NOT NULL DEFAULT 0")
    _add_column(conn, "event_logs", "cut_bytes", "BIGINT")


def _v4_functions(conn: Connection, _box: SecretBox) -> None:
    """The embedded function host's tables (new tables only)."""
    for table in (
        step_tables.functions,
        step_tables.function_versions,
        step_tables.function_aliases,
    ):
        table.create(conn)


def _v5_hook_executions(conn: Connection, _box: SecretBox) -> None:
    """Lambda hook invocations awaiting their status report (a new table)."""
    step_tables.hook_executions.create(conn)


def _v6_users_and_audit(conn: Connection, _box: SecretBox) -> None:
    """Keys of people with a role (server/permissions.py), the audit list, console
    sign-ins."""
    _add_column(conn, "credentials", "role", "VARCHAR(16)")
    step_tables.audit.create(conn)
    step_tables.console_sessions.create(conn)


def _v7_agent_version(conn: Connection, _box: SecretBox) -> None:
    """The version each instance's agent reports on its polls (server/agent_protocol.py)."""
    _add_column(conn, "instances", "agent_version", "VARCHAR(100)")


def _v8_elbv2(conn: Connection, _box: SecretBox) -> None:
    """The embedded ELBv2's tables (new tables only)."""
    for table in (
        step_tables.elb_load_balancers,
        step_tables.elb_target_groups,
        step_tables.elb_listeners,
        step_tables.elb_rules,
        step_tables.elb_targets,
    ):
        table.create(conn)


def _v9_ecs(conn: Connection, _box: SecretBox) -> None:
    """The embedded ECS's clusters, task definitions, services, task sets and tasks."""
    for table in (
        step_tables.ecs_clusters,
        step_tables.ecs_task_definitions,
        step_tables.ecs_services,
        step_tables.ecs_service_events,
        step_tables.ecs_task_sets,
        step_tables.ecs_tasks,
    ):
        table.create(conn)


def _v10_stacks(conn: Connection, _box: SecretBox) -> None:
    """Stacks, their resources and events, change sets (shipyard.stacks; new tables)."""
    for table in (
        step_tables.stacks,
        step_tables.stack_resources,
        step_tables.stack_events,
        step_tables.change_sets,
    ):
        table.create(conn)


def _v11_cluster(conn: Connection, _box: SecretBox) -> None:
    """Work shared among replicas: leases, each agent's latest poll, provisioned hosts
    and their owners (shipyard.cluster)."""
    for table in (step_tables.leases, step_tables.agent_polls, step_tables.provisioned_hosts):
        table.create(conn)


def _v12_open_commands_index(conn: Connection, _box: SecretBox) -> None:
    """Host commands by status: the poll recheck asks every second which instances have
    open work, and an IN list of every polling instance cost 100 ms of CPU at 10,000
    agents on PostgreSQL (store.host_commands.instances_with_work)."""
    conn.exec_driver_sql(
        "CREATE INDEX ix_host_commands_open ON host_commands (status, instance_name)"
    )


MIGRATIONS: list[Callable[[Connection, SecretBox], None]] = [
    _v1_initial,
    _v2_seal_secrets,
    _v3_output_caps,
    _v4_functions,
    _v5_hook_executions,
    _v6_users_and_audit,
    _v7_agent_version,
    _v8_elbv2,
    _v9_ecs,
    _v10_stacks,
    _v11_cluster,
    _v12_open_commands_index,
]
SEALED_SECRETS = 2  # the first version whose stored secrets are sealed


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection, box: SecretBox, upto: int | None = None) -> int:
    """Bring the schema up to date (or to version ``upto``); returns the resulting
    version. On PostgreSQL the caller holds the migration lock (``dialects``)."""
    version = current_version(conn)
    last = len(MIGRATIONS) if upto is None else upto
    for number, step in enumerate(MIGRATIONS[version:last], start=version + 1):
        step(conn, box)
        table = schema.meta
        if number == 1:
            conn.execute(table.insert().values(key="schema_version", value="1"))
        else:
            conn.execute(
                table.update().where(table.c.key == "schema_version").values(value=str(number))
            )
        version = number
    return version
