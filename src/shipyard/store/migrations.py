"""The one portable migration sequence. Append, never edit a released step.

Each step is given the connection and the server's SecretBox (for steps that rewrite
stored secrets).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, select

from shipyard.secretbox import SecretBox
from shipyard.store import schema
from shipyard.store.secret_rows import reseal_all


def _v1_initial(conn: Connection, _box: SecretBox) -> None:
    schema.metadata.create_all(conn)


def _v2_seal_secrets(conn: Connection, box: SecretBox) -> None:
    """Secrets were stored in plaintext before: seal them in place."""
    reseal_all(conn, box)


def _add_column(conn: Connection, table: str, column: str, ddl: str) -> None:
    """Add a column unless step 1 created it (it creates the current schema)."""
    if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")


def _v3_output_caps(conn: Connection, _box: SecretBox) -> None:
    """Script output is capped per host command (store.deployments.append_log)."""
    _add_column(conn, "host_commands", "output_bytes", "BIGINT NOT NULL DEFAULT 0")
    _add_column(conn, "event_logs", "cut_bytes", "BIGINT")


def _v4_functions(conn: Connection, _box: SecretBox) -> None:
    """The embedded function host's tables (new tables only)."""
    for table in (schema.functions, schema.function_versions, schema.function_aliases):
        table.create(conn, checkfirst=True)


def _v5_hook_executions(conn: Connection, _box: SecretBox) -> None:
    """Lambda hook invocations awaiting their status report (a new table)."""
    schema.hook_executions.create(conn, checkfirst=True)


def _v6_users_and_audit(conn: Connection, _box: SecretBox) -> None:
    """Keys of people with a role (server/permissions.py), the audit list, console
    sign-ins."""
    _add_column(conn, "credentials", "role", "VARCHAR(16)")
    schema.audit.create(conn, checkfirst=True)
    schema.console_sessions.create(conn, checkfirst=True)


def _v7_agent_version(conn: Connection, _box: SecretBox) -> None:
    """The version each instance's agent reports on its polls (server/agent_protocol.py)."""
    _add_column(conn, "instances", "agent_version", "VARCHAR(100)")


def _v8_elbv2(conn: Connection, _box: SecretBox) -> None:
    """The embedded ELBv2's tables (new tables only)."""
    for table in (
        schema.elb_load_balancers,
        schema.elb_target_groups,
        schema.elb_listeners,
        schema.elb_rules,
        schema.elb_targets,
    ):
        table.create(conn, checkfirst=True)


def _v9_ecs(conn: Connection, _box: SecretBox) -> None:
    """The embedded ECS's clusters, task definitions, services, task sets and tasks."""
    for table in (
        schema.ecs_clusters,
        schema.ecs_task_definitions,
        schema.ecs_services,
        schema.ecs_service_events,
        schema.ecs_task_sets,
        schema.ecs_tasks,
    ):
        table.create(conn, checkfirst=True)


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
]
SEALED_SECRETS = 2  # the first version whose stored secrets are sealed


def current_version(conn: Connection) -> int:
    if not conn.dialect.has_table(conn, "meta"):
        return 0
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")
    ).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection, box: SecretBox) -> int:
    """Bring the schema up to date; returns the resulting version."""
    version = current_version(conn)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
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
