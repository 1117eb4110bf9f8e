"""The client subcommands of ``shipyard``: instances, push, deploy, status, stop, logs.

Each ``cmd_*`` takes the parsed arguments, talks to the server through
``ShipyardClient`` and returns the exit status; failures are raised as ``CliError``
for ``shipyard.cli.main`` to print as one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3

from shipyard.cli import pack, progress
from shipyard.cli.client import CliError, ShipyardClient, readable_errors
from shipyard.cli.codedeploy_files import ONPREMISES_FILE, SETTINGS_FILE, StockAgentFiles
from shipyard.config import AgentConfig, agent_config_to_yaml, build

DEFAULT_ENDPOINT = "http://127.0.0.1:8420"
DEFAULT_REGION = "us-east-1"
POLL_INTERVAL = 0.2  # seconds between GetDeployment calls while following a deployment
INSTANCE_ARN_PREFIX = "arn:aws:iam::000000000000:user/shipyard/"
BATCH_GET_INSTANCES_MAX = 25


def _client(args: argparse.Namespace) -> ShipyardClient:
    endpoint = (
        args.endpoint
        or os.environ.get("SHIPYARD_ENDPOINT")
        or getattr(args, "agent_endpoint", None)
        or DEFAULT_ENDPOINT
    )
    with readable_errors(endpoint):
        session = boto3.Session(profile_name=args.profile)
    return ShipyardClient(endpoint, args.region or DEFAULT_REGION, session)


def _tags(pairs: Sequence[str]) -> list[dict[str, str]]:
    tags = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise CliError(f"--tag wants KEY=VALUE, got {pair!r}", 2)
        tags.append({"Key": key, "Value": value})
    return tags


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a secret key), replacing any old one."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)  # in case an old partial file had looser bits
            out.write(text)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_lines(lines: Sequence[str], out: TextIO | None = None) -> None:
    for line in lines:
        print(line, file=out or sys.stdout)


# --- on-premises instances -------------------------------------------------------------


def cmd_instance_register(args: argparse.Namespace) -> int:
    tags = _tags(args.tag)
    output = Path(args.output)
    stock = args.format == "codedeploy"
    if stock and not output.is_dir():
        raise CliError(f"instance register: directory {output} does not exist", 2)
    if not stock and args.pid_dir:
        raise CliError("instance register: --pid-dir is for --format codedeploy only", 2)
    if not output.parent.is_dir():
        raise CliError(f"instance register: directory {output.parent} does not exist", 2)
    client = _client(args)
    arn = INSTANCE_ARN_PREFIX + args.name
    client.api("RegisterOnPremisesInstance", instanceName=args.name, iamUserArn=arn)
    if tags:
        client.api("AddTagsToOnPremisesInstances", tags=tags, instanceNames=[args.name])
    issued = client.call_extension("ShipyardIssueInstanceCredentials", {"instanceName": args.name})
    if stock:
        return _write_stock_agent_files(args, client, issued, arn, output)
    flags: dict[str, Any] = {
        "endpoint": args.agent_endpoint or client.endpoint,
        "instance_name": args.name,
        "access_key_id": issued["accessKeyId"],
        "secret_access_key": issued["secretAccessKey"],
        "host_identifier": issued.get("hostIdentifier") or arn,
        "region": client.region,
        "root_dir": args.root_dir,
        "log_dir": args.log_dir,
    }
    config: AgentConfig = build(AgentConfig, env={}, flags=flags)
    _write_private(output, agent_config_to_yaml(config))
    tag_text = " ".join(f"{t['Key']}={t['Value']}" for t in tags) or "no tags"
    print(f"Registered instance {args.name} ({tag_text})")
    print(f"Agent config (contains its secret key) written to {output}")
    print(f"Start the agent on that host with: shipyard agent --config {shlex.quote(str(output))}")
    return 0


def _write_stock_agent_files(
    args: argparse.Namespace,
    client: ShipyardClient,
    issued: dict[str, Any],
    arn: str,
    conf_dir: Path,
) -> int:
    """``--format codedeploy``: the stock agent's on-premises file and settings."""
    dirs = {"root_dir": args.root_dir, "log_dir": args.log_dir, "pid_dir": args.pid_dir}
    files = StockAgentFiles(
        endpoint=args.agent_endpoint or client.endpoint,
        access_key_id=issued["accessKeyId"],
        secret_access_key=issued["secretAccessKey"],
        iam_user_arn=issued.get("hostIdentifier") or arn,
        region=client.region,
        conf_dir=conf_dir.absolute(),
        **{name: value for name, value in dirs.items() if value},
    )
    _write_private(conf_dir / ONPREMISES_FILE, files.onpremises())
    _write_private(conf_dir / SETTINGS_FILE, files.settings())
    print(f"Registered instance {args.name} for the stock CodeDeploy agent")
    print(f"Wrote {conf_dir / ONPREMISES_FILE} (contains its secret key) and {SETTINGS_FILE}")
    print("Restart the agent with SSL_CERT_FILE naming a CA bundle that trusts the server")
    return 0


def cmd_instance_deregister(args: argparse.Namespace) -> int:
    _client(args).api("DeregisterOnPremisesInstance", instanceName=args.name)
    print(f"Deregistered instance {args.name}; its agent's credentials no longer work")
    return 0


def cmd_instance_list(args: argparse.Namespace) -> int:
    client = _client(args)
    query: dict[str, Any] = {}
    if args.status:
        query["registrationStatus"] = args.status
    if args.tag:
        query["tagFilters"] = [{**t, "Type": "KEY_AND_VALUE"} for t in _tags(args.tag)]
    names: list[str] = []
    while True:
        page = client.api("ListOnPremisesInstances", **query)
        names += page.get("instanceNames", [])
        if not page.get("nextToken"):
            break
        query["nextToken"] = page["nextToken"]
    infos: list[Mapping[str, Any]] = []
    for start in range(0, len(names), BATCH_GET_INSTANCES_MAX):
        chunk = names[start : start + BATCH_GET_INSTANCES_MAX]
        infos += client.api("BatchGetOnPremisesInstances", instanceNames=chunk)["instanceInfos"]
    rows = [["NAME", "STATUS", "REGISTERED", "TAGS"]]
    for info in sorted(infos, key=lambda i: str(i.get("instanceName"))):
        tags = " ".join(f"{t.get('Key')}={t.get('Value')}" for t in info.get("tags", []))
        status = "Deregistered" if info.get("deregisterTime") else "Registered"
        rows.append(
            [
                str(info.get("instanceName")),
                status,
                progress.format_time(info.get("registerTime")),
                tags,
            ]
        )
    _print_lines(progress.table(rows) if infos else ["no on-premises instances"])
    return 0


# --- revisions and deployments -----------------------------------------------------------


def cmd_push(args: argparse.Namespace) -> int:
    source = Path(args.source)
    pack.check_source(source)
    client = _client(args)
    client.api("GetApplication", applicationName=args.application)  # fail before uploading
    with pack.zipped(source) as (archive, digest):
        key = args.key or f"{args.application}/{digest[:16]}.zip"
        client.ensure_bucket(args.bucket)
        stored = client.upload(archive, args.bucket, key)
    location = {"bucket": args.bucket, "key": key, "bundleType": "zip", **stored}
    revision = {"revisionType": "S3", "s3Location": location}
    extra = {"description": args.description} if args.description else {}
    client.api(
        "RegisterApplicationRevision", applicationName=args.application, revision=revision, **extra
    )
    print(json.dumps(revision, indent=2))
    command = ["shipyard", "deploy", "--application", args.application, "--group", "<GROUP>"]
    command += ["--bucket", args.bucket, "--key", key, "--etag", stored["eTag"]]
    if "version" in stored:
        command += ["--version", stored["version"]]
    words = (word if word == "<GROUP>" else shlex.quote(word) for word in command)
    print("Deploy it with:\n  " + " ".join(words))
    return 0


def _revision(args: argparse.Namespace) -> dict[str, Any]:
    from_s3 = args.bucket is not None or args.key is not None
    from_github = args.github_repo is not None or args.commit is not None
    if from_s3 == from_github:
        raise CliError("deploy: give either --bucket and --key, or --github-repo and --commit", 2)
    if from_github:
        if not (args.github_repo and args.commit):
            raise CliError("deploy: --github-repo and --commit go together", 2)
        return {
            "revisionType": "GitHub",
            "gitHubLocation": {"repository": args.github_repo, "commitId": args.commit},
        }
    if not (args.bucket and args.key):
        raise CliError("deploy: --bucket and --key go together", 2)
    location = {"bucket": args.bucket, "key": args.key}
    location["bundleType"] = args.bundle_type or pack.bundle_type_for(args.key)
    if args.version:
        location["version"] = args.version
    if args.etag:
        location["eTag"] = args.etag
    return {"revisionType": "S3", "s3Location": location}


def cmd_deploy(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {
        "applicationName": args.application,
        "deploymentGroupName": args.group,
        "revision": _revision(args),
    }
    optional = {
        "deploymentConfigName": args.config,
        "description": args.description,
        "fileExistsBehavior": args.file_exists_behavior,
        "ignoreApplicationStopFailures": args.ignore_application_stop_failures or None,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    client = _client(args)
    deployment_id = client.api("CreateDeployment", **request)["deploymentId"]
    if args.no_wait:
        print(deployment_id)
        return 0
    print(f"Created deployment {deployment_id}; following it (Ctrl-C stops following only)")
    try:
        deployment, targets = follow(client, deployment_id, sys.stdout)
    except KeyboardInterrupt:
        raise CliError(
            f"stopped following {deployment_id}; it goes on "
            f"(to stop it: shipyard stop {deployment_id})",
            130,
        ) from None
    _print_lines(progress.final_report(deployment, targets, time.time()))
    return 0 if deployment.get("status") == "Succeeded" else 1


def follow(
    client: ShipyardClient, deployment_id: str, out: TextIO
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Show a deployment's progress until it ends; return its final state and targets.

    On a terminal the table is redrawn in place; otherwise only changes are printed,
    one line each, which suits logs and CI output.
    """
    interactive = out.isatty()
    previous: progress.Snapshot = {}
    drawn = 0
    while True:
        deployment = client.api("GetDeployment", deploymentId=deployment_id)["deploymentInfo"]
        targets = client.deployment_targets(deployment_id)
        now = time.time()
        if interactive:
            width = shutil.get_terminal_size().columns - 1
            lines = [line[:width] for line in progress.live_table(deployment, targets, now)]
            out.write((f"\x1b[{drawn}A\r\x1b[J" if drawn else "") + "\n".join(lines) + "\n")
            drawn = len(lines)
        else:
            changes, previous = progress.change_lines(previous, deployment, targets, now)
            _print_lines(changes, out)
        out.flush()
        if deployment.get("status") in progress.TERMINAL_STATUSES:
            return deployment, targets
        time.sleep(POLL_INTERVAL)


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    deployment = client.api("GetDeployment", deploymentId=args.deployment_id)["deploymentInfo"]
    targets = client.deployment_targets(args.deployment_id)
    _print_lines(progress.status_report(deployment, targets, time.time()))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"deploymentId": args.deployment_id}
    if args.rollback is not None:
        params["autoRollbackEnabled"] = args.rollback
    answer = _client(args).api("StopDeployment", **params)
    print(f"{answer.get('status', '?')}: {answer.get('statusMessage', '')}".rstrip(": "))
    return 0


STEER_OPERATIONS = {
    "pause": "ShipyardPauseDeployment",
    "resume": "ShipyardResumeDeployment",
    "approve": "ShipyardApproveDeployment",
}


def cmd_steer(args: argparse.Namespace) -> int:
    """shipyard pause|resume|approve DEPLOYMENT_ID"""
    answer = _client(args).call_extension(
        STEER_OPERATIONS[args.verb], {"deploymentId": args.deployment_id}
    )
    print(f"{args.deployment_id}: {args.verb}d; status {answer.get('status', '?')}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    client = _client(args)
    answer = client.call_extension(
        "ShipyardRollback",
        {
            "applicationName": args.application,
            "deploymentGroupName": args.group,
            "emergency": args.emergency,
        },
    )
    if answer.get("stoppedDeploymentId"):
        print(f"Stopped deployment {answer['stoppedDeploymentId']}")
    rollback_id = answer.get("rollbackDeploymentId")
    if not rollback_id and answer.get("rollbackMessage"):
        print(answer["rollbackMessage"])
        return 0
    if not rollback_id:
        print("The rollback starts when the hosts in flight finish their current event")
        return 0
    print(f"Rollback deployment {rollback_id}")
    if args.no_wait:
        return 0
    deployment, targets = follow(client, rollback_id, sys.stdout)
    _print_lines(progress.final_report(deployment, targets, time.time()))
    return 0 if deployment.get("status") == "Succeeded" else 1


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.target:
        target_ids = [args.target]
    else:
        targets = client.deployment_targets(args.deployment_id)
        target_ids = [progress.target_of(t).target_id for t in targets]
    sections: list[tuple[str, str, str]] = []
    for target_id in target_ids:
        body = {"deploymentId": args.deployment_id, "targetId": target_id}
        if args.event:
            body["lifecycleEventName"] = args.event
        answer = client.call_extension("ShipyardGetLifecycleEventLog", body)
        for event in answer.get("events", []):
            if event.get("log"):
                sections.append((target_id, str(event.get("lifecycleEventName")), event["log"]))
    if not sections:
        print(f"no script output recorded for {args.deployment_id}", file=sys.stderr)
    for target_id, event_name, log in sections:
        if not (args.target and args.event):  # name each section unless asked for one
            print(f"==> {target_id} {event_name} <==")
        sys.stdout.write(log if log.endswith("\n") else log + "\n")
    return 0
