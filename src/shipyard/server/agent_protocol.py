"""The command service agents long-poll: ``CodeDeployCommandService_v20141006.<Op>``.

Thin handlers: check that the caller is an instance and speaks for its own host, check
the members, then hand over to the runner. Host command ids travel as decimal strings
(the model types HostCommandIdentifier as a string).

The same handlers answer the stock CodeDeploy agent: under its own target prefix, or
``CodeDeployCommandService.<Op>`` (signing name ``codedeploy-commands-secure``) when it
runs with ``:enable_auth_policy: true``. It gets its specification as signed PKCS#7
(``spec_signing``); Shipyard's agent asks for plain JSON with ``ShipyardSpecification``.
"""

from __future__ import annotations

import json
import logging
import zlib
from typing import Any

from sqlalchemy import Connection

from shipyard.errors import ApiError, UnknownExecution
from shipyard.model import HOOK_COMMANDS, CommandStatus
from shipyard.runner.agents import HostCommandView
from shipyard.server.context import Call, Handler, Json
from shipyard.server.spec_signing import SIGNED_FORMAT, SpecSigner
from shipyard.store import host_contact

log = logging.getLogger("shipyard.agents")

MAX_PAYLOAD_CHARS = 1024 * 1024  # output chunks are batched to well under this
MAX_HEARTBEAT_SECONDS = 5.0
MAX_COMMAND_ID_DIGITS = 19
MAX_VERSION_CHARS = 100  # instances.agent_version
VERSION_MEMBER = "ShipyardAgentVersion"  # what Shipyard's agent says it is
# The stock agent's header: the contents of its .version file, or UNKNOWN_VERSION.
STOCK_VERSION_HEADER = "x-amz-codedeploy-agent-version"
STOCK_AGENT = "codedeploy-agent"
OWN_HEADER_PREFIX = "shipyard-"  # Shipyard's agent sends the header too (agent/client.py)
HOLD_SPREAD = 0.2  # how much shorter than asked a poll may be held (spread_hold)
COMPLETION_STATUSES = (CommandStatus.SUCCEEDED.value, CommandStatus.FAILED.value)
_DIAGNOSTIC_TYPES: dict[str, type] = {
    "error_code": int,
    "script_name": str,
    "message": str,
    "log": str,
}


def _client_error(message: str) -> ApiError:
    return ApiError("ClientException", message)


def _instance(call: Call) -> str:
    """The calling instance's name; API (admin) keys may not speak for a host."""
    if call.principal.kind != "instance":
        raise ApiError(
            "AccessDeniedException", "Only instance credentials may call the command service", 403
        )
    return call.principal.name


def _required_string(body: dict[str, Any], member: str) -> str:
    value = body.get(member)
    if value is None or value == "":
        raise _client_error(f"{member} is required")
    if not isinstance(value, str):
        raise _client_error(f"{member} must be a string")
    return value


def _command_id(body: dict[str, Any]) -> int:
    value = _required_string(body, "HostCommandIdentifier")
    # Ids are 64-bit row ids: anything longer is no command (and int() of thousands of
    # digits is refused by Python itself).
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_COMMAND_ID_DIGITS):
        raise _client_error(f"Unknown host command {value[:40]!r}")
    return int(value)


def heartbeat_interval(agent_timeout: float) -> float:
    """How stale ``last_seen`` may grow before a poll rewrites it.

    ``last_seen`` only has to tell the sweeper that an agent is alive between polls
    (a poll in progress counts by itself), against ``agent_timeout``. Refreshing it at
    most every quarter of that (5 s at most) keeps it accurate well within the timeout
    and spares a write on nearly every poll: during a deployment an agent polls after
    each event, and on PostgreSQL each write is a durable commit the event loop waits for.
    """
    return min(MAX_HEARTBEAT_SECONDS, agent_timeout / 4)


def spread_hold(hold: float, instance: str) -> float:
    """Between 80 % and 100 % of ``hold``, fixed per instance.

    Agents that started together (a fleet booted at once, a server restart) would
    otherwise all poll again in the same instant every ``hold`` seconds, and a herd of
    thousands of polls at once stalls the server for seconds. With a period of its own
    each instance drifts away from the others."""
    share = (zlib.crc32(instance.encode()) % 1024) / 1024
    return hold * (1 - HOLD_SPREAD * share)


def _printable(value: str) -> bool:
    return value.isprintable() and value.strip() == value and value != ""


def reported_version(call: Call) -> str | None:
    """What the polling agent says it is: Shipyard's agent sends ``ShipyardAgentVersion``
    (checked: a bad value is the agent's bug); the stock agent only a header, recorded as
    ``codedeploy-agent <version>`` and, being outside Shipyard's control, cut to fit
    rather than refused. None when the agent says nothing."""
    value = call.body.get(VERSION_MEMBER)
    if value is not None:
        if not isinstance(value, str) or not _printable(value):
            raise _client_error(f"{VERSION_MEMBER} must be a printable string")
        if len(value) > MAX_VERSION_CHARS:
            raise _client_error(f"{VERSION_MEMBER} exceeds {MAX_VERSION_CHARS} characters")
        return value
    header = call.headers.get(STOCK_VERSION_HEADER, "")
    if not header or not _printable(header):
        return None
    if header.startswith(OWN_HEADER_PREFIX):  # a Shipyard agent from before the member
        return f"shipyard {header.removeprefix(OWN_HEADER_PREFIX)}"[:MAX_VERSION_CHARS]
    known = header if header != "UNKNOWN_VERSION" else "(version unknown)"
    return f"{STOCK_AGENT} {known}"[:MAX_VERSION_CHARS]


def _check_host(
    call: Call, instance: str, *, heartbeat: bool = False, version: str | None = None
) -> str:
    """``check_host_in`` in a transaction of its own."""
    with call.services.db.tx() as conn:
        return check_host_in(conn, call, instance, heartbeat=heartbeat, version=version)[0]


def check_host_in(
    conn: Connection,
    call: Call,
    instance: str,
    *,
    heartbeat: bool = False,
    version: str | None = None,
) -> tuple[str, bool]:
    """The instance's IAM ARN, after checking the request's HostIdentifier contains it,
    and whether the instance's row was written.

    With ``heartbeat``, also refresh ``last_seen`` when stale and record ``version`` when
    it differs from the stored one, in one statement and only then: the row is read
    anyway, so an unchanged version costs a poll nothing."""
    row = _checked(call, instance, host_contact.host_row(conn, instance))
    now = call.now()
    interval = heartbeat_interval(call.services.config.agent_timeout)
    fresh = row.last_seen is not None and 0 <= now - row.last_seen < interval
    seen_at = reported = None
    if heartbeat and not fresh:
        seen_at = now
        _log_contact(instance, row.last_seen, now, call.services.config.agent_timeout)
    if heartbeat and version is not None and version != row.agent_version:
        reported = version
        log.info("agent of %s reports version %s", instance, version)
    host_contact.record_contact(conn, instance, seen_at=seen_at, reported=reported)
    return str(row.iam_arn), seen_at is not None or reported is not None


def _checked(call: Call, instance: str, row: host_contact.HostRow | None) -> host_contact.HostRow:
    """``row``, once it shows the instance registered to the request's HostIdentifier."""
    host = _required_string(call.body, "HostIdentifier")
    if row is None or not row.registered:
        raise _client_error(f"Instance {instance} is not registered")
    # The stock agent's rule, applied from the server's side: the identifier the
    # agent sends must contain the registered ARN.
    if row.iam_arn not in host:
        raise _client_error(f"HostIdentifier {host!r} does not belong to instance {instance}")
    return row


def look_at_host(call: Call, instance: str, version: str | None) -> tuple[str, bool]:
    """A poll's host check outside any transaction: the instance's IAM ARN, and whether
    its contact must be written in the poll's own transaction (``check_host_in``): a
    first contact, an agent back from silence, a new version. The routine refresh of a
    stale ``last_seen`` goes to the next second's batch (``runner/contacts.py``)."""
    services = call.services
    row = _checked(call, instance, host_contact.quick_host_row(services.db.quick, instance))
    now, timeout = call.now(), services.config.agent_timeout
    if (
        row.last_seen is None
        or now - row.last_seen > timeout
        or (version is not None and version != row.agent_version)
    ):
        return str(row.iam_arn), True
    if not 0 <= now - row.last_seen < heartbeat_interval(timeout):
        services.runner.agents.contacts.note(instance, now)
    return str(row.iam_arn), False


def _log_contact(instance: str, last_seen: float | None, now: float, timeout: float) -> None:
    """Say when an agent first connects or comes back after being silent (not every poll:
    this runs only when ``last_seen`` is refreshed, at most every heartbeat interval)."""
    if last_seen is None:
        log.info("agent of %s connected for the first time", instance)
    elif now - last_seen > timeout:
        log.info("agent of %s is back after %.0f s of silence", instance, now - last_seen)


def _diagnostics(body: dict[str, Any], *, required: bool) -> dict[str, Any]:
    """The decoded Diagnostics payload (``{}`` when absent and optional)."""
    diagnostics = body.get("Diagnostics")
    if diagnostics is None:
        if required:
            raise _client_error("Diagnostics is required")
        return {}
    if not isinstance(diagnostics, dict):
        raise _client_error("Diagnostics must be an object with Format and Payload")
    fmt = diagnostics.get("Format", "JSON")
    if fmt != "JSON":
        raise _client_error(f"Diagnostics Format must be JSON; got {fmt!r}")
    payload = diagnostics.get("Payload")
    if payload is None or payload == "":
        if required:
            raise _client_error("Diagnostics Payload is required")
        return {}
    if not isinstance(payload, str):
        raise _client_error("Diagnostics Payload must be a string holding JSON")
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise _client_error(f"Diagnostics Payload exceeds {MAX_PAYLOAD_CHARS} characters")
    try:
        decoded = json.loads(payload)
    except ValueError:
        raise _client_error("Diagnostics Payload is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise _client_error("Diagnostics Payload must be a JSON object")
    return decoded


async def poll_host_command(call: Call) -> Json:
    instance = _instance(call)
    version = reported_version(call)
    services = call.services
    hold = services.config.poll_seconds
    asked = call.body.get("ShipyardPollSeconds")
    if isinstance(asked, int | float) and not isinstance(asked, bool) and asked >= 0:
        hold = min(hold, float(asked))  # the agent's read timeout is built on its own value
    hold = spread_hold(hold, instance)
    with_spec = call.body.get("ShipyardSpecification", False)
    if not isinstance(with_spec, bool):
        raise _client_error("ShipyardSpecification must be true or false")
    # Shipyard's agent takes the command acknowledged, sparing the acknowledgement.
    acknowledge = call.body.get("ShipyardAcknowledge", False)
    if not isinstance(acknowledge, bool):
        raise _client_error("ShipyardAcknowledge must be true or false")
    arn, write_now = look_at_host(call, instance, version)

    def check(conn: Connection) -> bool:
        # In the poll's first claim's transaction.
        return check_host_in(conn, call, instance, heartbeat=True, version=version)[1]

    command = await services.runner.agents.poll(
        instance, hold, check if write_now else None, acknowledge=acknowledge
    )
    if command is None:
        return {}
    answer = {**_host_command(command), "HostIdentifier": arn}
    if acknowledge:
        answer["ShipyardAcknowledged"] = command.acknowledged
    if with_spec:
        # Shipyard's agent asks for the specification with the command, sparing the
        # GetDeploymentSpecification call that would follow.
        try:
            payload = services.runner.agents.specification(instance, command.execution_id)
        except UnknownExecution:
            pass  # the deployment went meanwhile: the agent's own call will say so
        else:
            answer["ShipyardDeploymentSpecification"] = _specification(payload, None)
    return {"HostCommand": answer}


def _host_command(command: HostCommandView) -> Json:
    return {
        "HostCommandIdentifier": str(command.id),
        "DeploymentExecutionId": command.execution_id,
        "CommandName": command.command_name,
        "Nonce": command.id,
    }


async def put_host_command_acknowledgement(call: Call) -> Json:
    instance = _instance(call)
    command_id = _command_id(call.body)
    _diagnostics(call.body, required=False)  # {"IsCommandNoop": ...}: checked, not needed
    return {"CommandStatus": await call.services.runner.agents.acknowledge(instance, command_id)}


def get_deployment_specification(call: Call) -> Json:
    """GetDeploymentSpecification: plain JSON for Shipyard's agent (it sends the extension
    member ``ShipyardSpecification: true``), signed PKCS#7 for any other agent."""
    instance = _instance(call)
    execution_id = _required_string(call.body, "DeploymentExecutionId")
    plain = call.body.get("ShipyardSpecification", False)
    if not isinstance(plain, bool):
        raise _client_error("ShipyardSpecification must be true or false")
    _check_host(call, instance)
    payload = call.services.runner.agents.specification(instance, execution_id)
    return _specification(payload, None if plain else call.services.spec_signer)


def _specification(payload: dict[str, Any], signer: SpecSigner | None) -> Json:
    """The answer's envelope: ``TEXT/JSON``, or ``PKCS7/JSON`` signed by ``signer``."""
    content = json.dumps(payload, separators=(",", ":"))
    envelope = {"Format": "TEXT/JSON", "Payload": content}
    if signer is not None:
        envelope = {"Format": SIGNED_FORMAT, "Payload": signer.sign(content.encode())}
    return {
        "DeploymentSystem": "CodeDeploy",
        "DeploymentSpecification": {"GenericEnvelope": envelope},
    }


def post_host_command_update(call: Call) -> Json:
    """PostHostCommandUpdate: output of a running command (stored up to the server's
    ``max_command_output_bytes`` per command). The model has no HostIdentifier member
    here; Shipyard's agent sends it anyway, and when present it must be the caller's."""
    instance = _instance(call)
    command_id = _command_id(call.body)
    if "HostIdentifier" in call.body:
        _check_host(call, instance)
    chunk = _diagnostics(call.body, required=True).get("log", "")
    if not isinstance(chunk, str):
        raise _client_error("Diagnostics Payload member log must be a string")
    return {"CommandStatus": call.services.runner.agents.append_log(instance, command_id, chunk)}


async def put_host_command_complete(call: Call) -> Json:
    """PutHostCommandComplete; with the extension member ``ShipyardNextCommand: true``
    the answer carries the host's next command when one is queued (see
    ``Runner.complete``), so Shipyard's agent needs no poll between events."""
    instance = _instance(call)
    command_id = _command_id(call.body)
    status = _required_string(call.body, "CommandStatus")
    if status not in COMPLETION_STATUSES:
        raise _client_error(f"CommandStatus must be Succeeded or Failed; got {status!r}")
    diagnostics = _diagnostics(call.body, required=False)
    for member, expected in _DIAGNOSTIC_TYPES.items():
        value = diagnostics.get(member)
        if value is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            raise _client_error(f"Diagnostics Payload member {member} has the wrong type")
    then_next = call.body.get("ShipyardNextCommand", False)
    if not isinstance(then_next, bool):
        raise _client_error("ShipyardNextCommand must be true or false")
    handed = await call.services.runner.agents.complete(
        instance,
        command_id,
        status,
        diagnostics,
        then_next=then_next,
        noop_events=_noop_events(call.body),
    )
    if handed is None:
        return {}
    return {
        "ShipyardNextCommand": {
            **_host_command(handed),
            # Acknowledged already: the agent runs it without PutHostCommandAcknowledgement.
            "ShipyardAcknowledged": handed.acknowledged,
        }
    }


def _noop_events(body: dict[str, Any]) -> frozenset[str]:
    """``ShipyardNoopEvents``: the hook events the agent has no scripts for in this
    deployment, which the server may complete for it (``AgentChannel.complete``)."""
    value = body.get("ShipyardNoopEvents", [])
    if not isinstance(value, list) or not all(
        isinstance(name, str) and name in HOOK_COMMANDS for name in value
    ):
        raise _client_error("ShipyardNoopEvents must be a list of lifecycle hook event names")
    return frozenset(value)


AGENT_OPERATIONS: dict[str, Handler] = {
    "PollHostCommand": poll_host_command,
    "PutHostCommandAcknowledgement": put_host_command_acknowledgement,
    "GetDeploymentSpecification": get_deployment_specification,
    "PostHostCommandUpdate": post_host_command_update,
    "PutHostCommandComplete": put_host_command_complete,
}
