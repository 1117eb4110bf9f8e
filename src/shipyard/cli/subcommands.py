"""The client subcommands of ``shipyard``: instances, push, deploy, status, stop, logs.

Each ``cmd_*`` takes the parsed arguments, talks to the server through
``ShipyardClient`` and returns the exit status; failures are raised as ``CliError``
for ``shipyard.cli.main`` to print as one line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import boto3

from shipyard.cli import fleet, following, output, pack, progress
from shipyard.cli.client import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    ShipyardClient,
    check_endpoint,
    readable_errors,
)
from shipyard.cli.codedeploy_files import ONPREMISES_FILE, SETTINGS_FILE, StockAgentFiles
from shipyard.config import AgentConfig, agent_config_to_yaml, build

DEFAULT_ENDPOINT = "http://127.0.0.1:8420"
DEFAULT_REGION = "us-east-1"
INSTANCE_ARN_PREFIX = "arn:aws:iam::000000000000:user/shipyard/"


def client_for(args: argparse.Namespace) -> ShipyardClient:
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
    config_path = Path(args.agent_config)
    stock = args.format == "codedeploy"
    if stock and not config_path.is_dir():
        raise CliError(f"instance register: directory {config_path} does not exist", 2)
    if not stock and args.pid_dir:
        raise CliError("instance register: --pid-dir is for --format codedeploy only", 2)
    if not config_path.parent.is_dir():
        raise CliError(f"instance register: directory {config_path.parent} does not exist", 2)
    if args.agent_endpoint:  # written into the agent's config: refuse it here, not there
        check_endpoint(args.agent_endpoint)
    client = client_for(args)
    arn = INSTANCE_ARN_PREFIX + args.name
    client.api("RegisterOnPremisesInstance", instanceName=args.name, iamUserArn=arn)
    if tags:
        client.api("AddTagsToOnPremisesInstances", tags=tags, instanceNames=[args.name])
    issued = client.call_extension("ShipyardIssueInstanceCredentials", {"instanceName": args.name})
    if stock:
        return _write_stock_agent_files(args, client, issued, arn, config_path)
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
    _write_private(config_path, agent_config_to_yaml(config))
    tag_text = " ".join(f"{t['Key']}={t['Value']}" for t in tags) or "no tags"
    print(f"Registered instance {args.name} ({tag_text})")
    print(f"Agent config (contains its secret key) written to {config_path}")
    quoted = shlex.quote(str(config_path))
    print(f"Start the agent on that host with: shipyard agent --config {quoted}")
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
    client_for(args).api("DeregisterOnPremisesInstance", instanceName=args.name)
    print(f"Deregistered instance {args.name}; its agent's credentials no longer work")
    return 0


# --- revisions and deployments -----------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """shipyard validate DIR: the checks push makes, for CI; warnings on stderr."""
    source = Path(args.source)
    if not source.is_dir():
        raise CliError(f"validate: {source} is not a directory", EXIT_USAGE)
    problems = pack.bundle_problems(source)
    if output.wants_json(args):
        output.emit_json([{**vars(p), "path": str(source / p.path)} for p in problems])
    else:
        for problem in problems:
            kind = "error" if problem.fatal else "warning"
            print(f"{source / str(problem)} [{kind}]")
        if not problems:
            print(f"{source}: the bundle is valid", file=sys.stderr)
    return EXIT_USAGE if any(p.fatal for p in problems) else EXIT_OK


def _bundle_kind(args: argparse.Namespace) -> str:
    if not args.key:
        return str(args.bundle_type or "zip")
    from_key = pack.bundle_type_for(args.key)
    if args.bundle_type and pack.has_bundle_suffix(args.key) and args.bundle_type != from_key:
        raise CliError(
            f"push: --key {args.key} names a {from_key} bundle but --bundle-type is "
            f"{args.bundle_type}",
            EXIT_USAGE,
        )
    return str(args.bundle_type or from_key)


def cmd_push(args: argparse.Namespace) -> int:
    source = Path(args.source)
    for warning in pack.check_source(source):
        print(f"shipyard: warning: {source / str(warning)}", file=sys.stderr)
    kind = _bundle_kind(args)
    client = client_for(args)
    client.api("GetApplication", applicationName=args.application)  # fail before uploading
    with pack.packed(source, kind) as (archive, digest):
        key = args.key or f"{args.application}/{digest[:16]}.{kind}"
        client.ensure_bucket(args.bucket)
        stored = client.upload(
            archive, args.bucket, key, progress=sys.stderr if sys.stderr.isatty() else None
        )
    location = {"bucket": args.bucket, "key": key, "bundleType": kind, **stored}
    revision = {"revisionType": "S3", "s3Location": location}
    extra = {"description": args.description} if args.description else {}
    client.api(
        "RegisterApplicationRevision", applicationName=args.application, revision=revision, **extra
    )
    if output.wants_json(args):
        output.emit_json(revision)
        return EXIT_OK
    groups = client.api("ListDeploymentGroups", applicationName=args.application)
    names = groups.get("deploymentGroups", [])
    group = names[0] if len(names) == 1 else "GROUP"
    command = ["shipyard", "deploy", "--application", args.application, "--group", group]
    command += ["--bucket", args.bucket, "--key", key, "--etag", stored["eTag"]]
    if "version" in stored:
        command += ["--object-version", stored["version"]]
    print(f"Pushed s3://{args.bucket}/{key} ({kind}, ETag {stored['eTag']})")
    print("Deploy it with:\n  " + " ".join(shlex.quote(word) for word in command))
    if len(names) > 1:
        print(f"  where GROUP is one of: {', '.join(names)}")
    elif not names:
        print(f"  after creating GROUP: shipyard group create {args.application} GROUP --tag K=V")
    return EXIT_OK


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
    if args.object_version:
        location["version"] = args.object_version
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
        "deploymentConfigName": args.deployment_config,
        "description": args.description,
        "fileExistsBehavior": args.file_exists_behavior,
        "ignoreApplicationStopFailures": args.ignore_application_stop_failures or None,
    }
    request.update({k: v for k, v in optional.items() if v is not None})
    client = client_for(args)
    deployment_id = client.api("CreateDeployment", **request)["deploymentId"]
    if args.no_wait:
        print(deployment_id)
        return EXIT_OK
    print(f"Created deployment {deployment_id}; following it (Ctrl-C stops following only)")
    fleet.warn_never_connected(client, deployment_id)
    final, _ = following.follow_with_rollback(client, deployment_id, sys.stdout, logs=args.logs)
    succeeded = final.get("deploymentId") == deployment_id
    return following.exit_status(final) if succeeded else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.watch:
        try:
            deployment, targets = following.follow(client, args.deployment_id, sys.stdout)
        except KeyboardInterrupt:
            raise following.interrupted(args.deployment_id) from None
    else:
        deployment = client.api("GetDeployment", deploymentId=args.deployment_id)["deploymentInfo"]
        targets = client.deployment_targets(args.deployment_id)
    if output.wants_json(args):
        output.emit_json({"deploymentInfo": deployment, "deploymentTargets": targets})
    else:
        _print_lines(progress.status_report(deployment, targets, time.time()))
    if deployment.get("status") in progress.TERMINAL_STATUSES:
        return following.exit_status(deployment)
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"deploymentId": args.deployment_id}
    if args.rollback is not None:
        params["autoRollbackEnabled"] = args.rollback
    answer = client_for(args).api("StopDeployment", **params)
    print(f"{answer.get('status', '?')}: {answer.get('statusMessage', '')}".rstrip(": "))
    return EXIT_OK


WAIT_TYPES = {"ready": "READY_WAIT", "termination": "TERMINATION_WAIT"}


def cmd_continue(args: argparse.Namespace) -> int:
    """shipyard continue DEPLOYMENT_ID: ContinueDeployment, for blue/green waits."""
    wait_type = WAIT_TYPES[args.wait_type]
    client_for(args).api(
        "ContinueDeployment", deploymentId=args.deployment_id, deploymentWaitType=wait_type
    )
    print(f"{args.deployment_id}: continued ({wait_type})")
    return EXIT_OK


STEER_OPERATIONS = {
    "pause": "ShipyardPauseDeployment",
    "resume": "ShipyardResumeDeployment",
    "approve": "ShipyardApproveDeployment",
}


def cmd_steer(args: argparse.Namespace) -> int:
    """shipyard pause|resume|approve DEPLOYMENT_ID"""
    answer = client_for(args).call_extension(
        STEER_OPERATIONS[args.verb], {"deploymentId": args.deployment_id}
    )
    print(f"{args.deployment_id}: {args.verb}d; status {answer.get('status', '?')}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    client = client_for(args)
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
        return EXIT_OK
    how = (
        "every host at once (CodeDeployDefault.AllAtOnce)"
        if args.emergency
        else "the group's config"
    )
    print(f"Rollback deployment {rollback_id} redeploys the last good revision with {how}")
    if args.no_wait:
        return EXIT_OK
    try:
        deployment, targets = following.follow(client, rollback_id, sys.stdout)
    except KeyboardInterrupt:
        raise following.interrupted(rollback_id, "rollback") from None
    following.report(deployment, targets)
    return following.exit_status(deployment)


def cmd_logs(args: argparse.Namespace) -> int:
    client = client_for(args)
    if args.follow:
        tail = following.LogTail(client, args.deployment_id, sys.stdout)
        try:
            while True:
                deployment = client.api("GetDeployment", deploymentId=args.deployment_id)
                targets = client.deployment_targets(args.deployment_id)
                tail.poll(targets)
                sys.stdout.flush()
                if deployment["deploymentInfo"].get("status") in progress.TERMINAL_STATUSES:
                    return EXIT_OK
                time.sleep(following.POLL_INTERVAL)
        except KeyboardInterrupt:
            raise following.interrupted(args.deployment_id) from None
    if args.target:
        target_ids = [args.target]
    else:
        targets = client.deployment_targets(args.deployment_id)
        target_ids = [progress.target_of(t).target_id for t in targets]
    sections: list[dict[str, str]] = []
    for target_id in target_ids:
        body = {"deploymentId": args.deployment_id, "targetId": target_id}
        if args.event:
            body["lifecycleEventName"] = args.event
        answer = client.call_extension("ShipyardGetLifecycleEventLog", body)
        for event in answer.get("events", []):
            if event.get("log"):
                name = str(event.get("lifecycleEventName"))
                sections.append(
                    {"targetId": target_id, "lifecycleEventName": name, "log": event["log"]}
                )
    if output.wants_json(args):
        output.emit_json(sections)
        return EXIT_OK
    if not sections:
        print(f"no script output recorded for {args.deployment_id}", file=sys.stderr)
    for section in sections:
        if not (args.target and args.event):  # name each section unless asked for one
            print(f"==> {section['targetId']} {section['lifecycleEventName']} <==")
        log = section["log"]
        sys.stdout.write(log if log.endswith("\n") else log + "\n")
    return EXIT_OK
