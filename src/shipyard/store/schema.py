"""Every table Shipyard stores. Times are epoch seconds (float)."""

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
    Text,
    UniqueConstraint,
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
    Column("role", String(16)),  # a "user" key's role: viewer, deployer or admin
)

# Who changed what when: every successful changing API call (server/audit.py).
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

# Console sign-ins (shipyard.console.sessions): the cookie's token is stored hashed.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("access_key_id", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
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
    Column("agent_version", String(100)),  # what the agent last said it is
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
    # Bytes of script output the agent sent for it (stored or cut: see event_logs).
    Column("output_bytes", BigInteger, nullable=False, default=0, server_default="0"),
    Index("ix_host_commands_poll", "instance_name", "status"),
    Index("ix_host_commands_open", "status", "instance_name"),  # migration step 12
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
    Column("cut_bytes", BigInteger),  # set on the tail row only
    Index("ix_event_logs_target", "deployment_id", "target_id", "id"),
)

# The embedded function host (shipyard.functions): a function, its versions ("$LATEST"
# and the published "1", "2", ...) and its aliases. Version and alias docs hold the
# Lambda FunctionConfiguration / AliasConfiguration members, ARNs left out (the region
# is the server's).
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

# Lambda hook invocations awaiting PutLifecycleEventHookExecutionStatus: the id the hook
# function was given, and what it reports on (status Pending until it reports).
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

# The embedded ELBv2 (shipyard.containers.elbv2). Each doc holds the resource's API
# members as stored (ARNs of other resources included); ids are the ARNs' last parts.
elb_load_balancers = Table(
    "elb_load_balancers",
    metadata,
    Column("arn", String(256), primary_key=True),
    Column("name", String(32), nullable=False, unique=True),
    Column("doc", JSON, nullable=False),
)

elb_target_groups = Table(
    "elb_target_groups",
    metadata,
    Column("arn", String(256), primary_key=True),
    Column("name", String(32), nullable=False, unique=True),
    Column("doc", JSON, nullable=False),
)

elb_listeners = Table(
    "elb_listeners",
    metadata,
    Column("arn", String(256), primary_key=True),
    Column("lb_arn", String(256), nullable=False, index=True),
    Column("port", Integer, nullable=False),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("lb_arn", "port", name="uq_elb_listener_port"),
)

elb_rules = Table(
    "elb_rules",
    metadata,
    Column("arn", String(256), primary_key=True),
    Column("listener_arn", String(256), nullable=False, index=True),
    Column("priority", Integer, nullable=False),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("listener_arn", "priority", name="uq_elb_rule_priority"),
)

# Registered targets: "registered" until deregistered, then "draining" until
# drain_until (or until idle, whichever comes first), then the row goes.
elb_targets = Table(
    "elb_targets",
    metadata,
    Column("tg_arn", String(256), primary_key=True),
    Column("address", String(64), primary_key=True),
    Column("port", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", Float, nullable=False),
    Column("drain_until", Float),
)

# The embedded ECS (shipyard.containers.ecs). Each doc holds the API's own members for
# what the columns do not carry; ARNs are built from the names and the server's region.
ecs_clusters = Table(
    "ecs_clusters",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("status", String(16), nullable=False),  # ACTIVE | INACTIVE
    Column("created", Float, nullable=False),
    Column("doc", JSON, nullable=False),  # tags, settings
)

ecs_task_definitions = Table(
    "ecs_task_definitions",
    metadata,
    Column("family", String(255), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("status", String(16), nullable=False),  # ACTIVE | INACTIVE
    Column("registered", Float, nullable=False),
    Column("doc", JSON, nullable=False),  # the TaskDefinition members, tags
)

# A service name can be reused once the old one is INACTIVE, so services have an id.
ecs_services = Table(
    "ecs_services",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("cluster", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # ACTIVE | DRAINING | INACTIVE
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("doc", JSON, nullable=False),
    Index("ix_ecs_services_name", "cluster", "name"),
)

ecs_service_events = Table(
    "ecs_service_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_ecs_service_events_service", "service_id", "id"),
)

ecs_task_sets = Table(
    "ecs_task_sets",
    metadata,
    Column("id", String(40), primary_key=True),  # ecs-svc/<19 digits>
    Column("service_id", String(32), nullable=False, index=True),
    Column("status", String(16), nullable=False),  # PRIMARY | ACTIVE | DRAINING
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("doc", JSON, nullable=False),
)

# One row per task; the reconciler is the only writer of lastStatus.
ecs_tasks = Table(
    "ecs_tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("cluster", String(255), nullable=False),
    Column("service_id", String(32), nullable=False, index=True),
    Column("task_set_id", String(40), nullable=False, index=True),
    Column("last_status", String(16), nullable=False),
    Column("desired_status", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("doc", JSON, nullable=False),
    Index("ix_ecs_tasks_cluster", "cluster", "last_status"),
)

# Stacks (the CloudFormation API, shipyard.stacks). A stack keeps its name after
# deletion (DescribeStacks by id); ``previous`` is the last stable template and
# parameters while an update runs (what a rollback returns to).
stacks = Table(
    "stacks",
    metadata,
    Column("stack_id", String(255), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("status", String(64), nullable=False),
    Column("status_reason", Text),
    Column("template_body", Text, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("previous", JSON),
    Column("description", Text),
    Column("outputs", JSON),
    Column("capabilities", JSON),
    Column("tags", JSON),
    Column("disable_rollback", Boolean, nullable=False, default=False),
    Column("change_set_id", String(255)),
    Column("created", Float, nullable=False),
    Column("updated", Float),
    Column("deleted", Float),
    Index("ix_stacks_name", "name"),
)

# One row per resource of a stack. ``touched``: the order in which the running operation
# changed it (null when it has not); ``previous``: the resource as it was before (null
# when the operation added it). Both are cleared when the operation ends.
stack_resources = Table(
    "stack_resources",
    metadata,
    Column("stack_id", String(255), primary_key=True),
    Column("logical_id", String(255), primary_key=True),
    Column("resource_type", String(255), nullable=False),
    Column("physical_id", String(2048)),
    Column("status", String(64), nullable=False),
    Column("status_reason", Text),
    Column("properties", JSON, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("deletion_policy", String(16), nullable=False),
    Column("touched", Integer),
    Column("previous", JSON),
    # What a provider noted while it worked (a CodeDeploy deployment's id).
    Column("progress", JSON),
    Column("updated", Float, nullable=False),
)

stack_events = Table(
    "stack_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("stack_id", String(255), nullable=False),
    Column("stack_name", String(128), nullable=False),
    Column("logical_id", String(255), nullable=False),
    Column("physical_id", String(2048)),
    Column("resource_type", String(255), nullable=False),
    Column("status", String(64), nullable=False),
    Column("reason", Text),
    Column("timestamp", Float, nullable=False),
    Index("ix_stack_events_stack", "stack_id", "seq"),
)

change_sets = Table(
    "change_sets",
    metadata,
    Column("change_set_id", String(255), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("stack_id", String(255), nullable=False),
    Column("change_set_type", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text),
    Column("execution_status", String(32), nullable=False),
    Column("template_body", Text, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("changes", JSON, nullable=False),
    Column("description", Text),
    Column("capabilities", JSON),
    Column("tags", JSON),
    Column("created", Float, nullable=False),
    Index("ix_change_sets_stack", "stack_id", "name"),
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
