"""Carrying out one host command: DownloadBundle, Install, or a lifecycle hook.

The network loop calls :func:`execute` (one thread per command) and reports the
:class:`CommandResult` it returns; nothing here raises to the caller. Commands of
different deployment groups touch disjoint directories and the executor keeps no
shared state, so they may run concurrently.

Which revision a hook's scripts come from follows the stock agent: ApplicationStop,
BeforeBlockTraffic and AfterBlockTraffic run the *last successfully installed*
revision's scripts while the current revision has not been downloaded yet, and are
no-ops when there is none (the first deployment to a host).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.agent import appspec_file
from shipyard.agent.hooks import DEFAULT_KILL_GRACE, CommandResult, HookRun, ScriptError, run_event
from shipyard.agent.layout import ARCHIVE_DIR, PRIVATE_MODE, Layout, ensure_dir
from shipyard.config import AgentConfig
from shipyard.model import HOOK_COMMANDS, DeploymentCreator

if TYPE_CHECKING:
    from shipyard.agent.appspec import AppSpec

# bundle (tarfile, zipfile), install and appspec are imported by the commands that need
# them, not here: an idle agent must stay under 25 MiB, and most of its life is idle.

# Events whose scripts come from an earlier revision while the current one is absent.
PREVIOUS_REVISION_EVENTS = frozenset({"ApplicationStop", "BeforeBlockTraffic", "AfterBlockTraffic"})
# A blue/green rollback (DeploymentCreator codeDeployRollback) has its own mapping.
BLUE_GREEN_ROLLBACK_SOURCES = {
    "BeforeBlockTraffic": "most_recent",
    "AfterBlockTraffic": "most_recent",
    "ApplicationStop": "last_successful",
    "BeforeAllowTraffic": "last_successful",
    "AfterAllowTraffic": "last_successful",
}
BUNDLE_TYPES = frozenset({"tar", "tgz", "zip"})
# Ids become directory names: never let one climb out of the deployment root.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The agent's own keys (when given through the environment) are not the scripts' business.
AGENT_SECRETS = frozenset({"SHIPYARD_ACCESS_KEY_ID", "SHIPYARD_SECRET_ACCESS_KEY"})
# Everything the agent's own configuration may come from (keys included).
AGENT_ENV_PREFIX = "SHIPYARD_AGENT_"


@dataclass(frozen=True)
class S3Revision:
    bucket: str
    key: str
    bundle_type: str
    version: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class GitHubRevision:
    account: str
    repository: str
    commit_id: str
    bundle_type: str = "tar"


@dataclass(frozen=True)
class DeploymentSpec:
    """The parts of a deployment specification the agent acts on."""

    deployment_id: str  # bare id, even when the payload carried an ARN
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    revision: S3Revision | GitHubRevision
    deployment_creator: str = DeploymentCreator.USER.value
    deployment_type: str = "IN_PLACE"
    appspec_filename: str = "appspec.yml"
    file_exists_behavior: str = "DISALLOW"
    bundle_url: str | None = None  # Shipyard: ready-to-GET URL of an S3 revision
    git_url: str | None = None  # Shipyard: clone URL of a GitHub revision
    max_bundle_bytes: int | None = None


def parse_spec(payload: Mapping[str, Any]) -> DeploymentSpec:
    """Validate a deployment specification payload; ValueError names what is wrong."""
    if not isinstance(payload, Mapping):
        raise ValueError("deployment specification must be a JSON object")
    deployment_id = _required(payload, "DeploymentId")
    if deployment_id.startswith("arn:"):
        deployment_id = re.split(r"[/:]", deployment_id)[-1]
    group_id = _required(payload, "DeploymentGroupId")
    for field_name, value in (("DeploymentId", deployment_id), ("DeploymentGroupId", group_id)):
        if not SAFE_ID.fullmatch(value):
            raise ValueError(f"deployment specification {field_name} is not a valid id: {value!r}")
    overrides = _mapping(_mapping(payload, "AgentActionOverrides"), "AgentOverrides")
    appspec_name = _optional(payload, "AppSpecFilename") or "appspec.yml"
    if appspec_name.startswith("/") or ".." in appspec_name.split("/"):
        raise ValueError(
            f"deployment specification AppSpecFilename must be a path inside the bundle: "
            f"{appspec_name!r}"
        )
    max_bytes = payload.get("MaxBundleBytes")
    if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes <= 0):
        raise ValueError("deployment specification MaxBundleBytes must be a positive integer")
    return DeploymentSpec(
        deployment_id=deployment_id,
        deployment_group_id=group_id,
        deployment_group_name=_required(payload, "DeploymentGroupName"),
        application_name=_required(payload, "ApplicationName"),
        revision=_parse_revision(_mapping(payload, "Revision")),
        deployment_creator=_optional(payload, "DeploymentCreator") or DeploymentCreator.USER.value,
        deployment_type=_optional(payload, "DeploymentType") or "IN_PLACE",
        appspec_filename=appspec_name,
        file_exists_behavior=(_optional(overrides, "FileExistsBehavior") or "DISALLOW").upper(),
        bundle_url=_optional(payload, "BundleUrl"),
        git_url=_optional(payload, "GitUrl"),
        max_bundle_bytes=max_bytes,
    )


def _parse_revision(revision: Mapping[str, Any]) -> S3Revision | GitHubRevision:
    kind = _optional(revision, "RevisionType")
    if kind == "S3":
        s3 = _mapping(revision, "S3Revision")
        bundle_type = _required(s3, "BundleType", "S3Revision.")
        if bundle_type not in BUNDLE_TYPES:
            raise ValueError(
                f"deployment specification S3Revision.BundleType must be tar, tgz or zip, "
                f"not {bundle_type!r}"
            )
        return S3Revision(
            bucket=_required(s3, "Bucket", "S3Revision."),
            key=_required(s3, "Key", "S3Revision."),
            bundle_type=bundle_type,
            version=_optional(s3, "Version"),
            etag=_optional(s3, "ETag"),
        )
    if kind == "GitHub":
        github = _mapping(revision, "GitHubRevision")
        return GitHubRevision(
            account=_optional(github, "Account") or "",
            repository=_required(github, "Repository", "GitHubRevision."),
            commit_id=_required(github, "CommitId", "GitHubRevision."),
            bundle_type=_optional(github, "BundleType") or "tar",
        )
    if kind is None:
        raise ValueError("deployment specification is missing Revision.RevisionType")
    raise ValueError(f"unsupported revision type {kind!r} (expected S3 or GitHub)")


def _required(data: Mapping[str, Any], key: str, prefix: str = "") -> str:
    value = _optional(data, key, prefix)
    if not value:
        raise ValueError(f"deployment specification is missing {prefix}{key}")
    return value


def _optional(data: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"deployment specification {prefix}{key} must be a string")
    return value


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"deployment specification {key} must be an object")
    return value


# --- commands --------------------------------------------------------------------------


def execute(
    command_name: str,
    spec: DeploymentSpec,
    config: AgentConfig,
    on_output: Callable[[str], None],
    *,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> CommandResult:
    """Carry out one host command. Never raises: failures come back as error codes."""
    layout = Layout(config.root_dir)
    try:
        if command_name == "DownloadBundle":
            _download_bundle(layout, spec, config)
        elif command_name == "Install":
            _install(layout, spec)
        elif command_name in HOOK_COMMANDS:
            return _run_hooks(layout, spec, command_name, on_output, kill_grace)
        else:
            return _unknown(f"Unsupported command type: {command_name}")
    except _CommandError as exc:
        return _unknown(str(exc))
    except Exception as exc:
        return _unknown(f"{command_name} failed unexpectedly: {type(exc).__name__}: {exc}")
    return CommandResult(ScriptError.SUCCEEDED, "", "Succeeded", "")


def is_noop(command_name: str, spec: DeploymentSpec, config: AgentConfig) -> bool:
    """Whether a hook command has no scripts to run (acknowledgement diagnostics).

    DownloadBundle and Install are never no-ops; neither is a command that would fail.
    """
    return command_name in noop_events(spec, config, only=command_name)


def noop_events(
    spec: DeploymentSpec, config: AgentConfig, *, only: str | None = None
) -> frozenset[str]:
    """The hook events (or just ``only``) with no scripts to run now, each revision's
    appspec read once.

    Sent with a result, so that the server completes them for the agent: nothing is
    run or written for a hook without scripts, and nothing the agent does between two
    events changes which revision a hook takes its scripts from."""
    layout = Layout(config.root_dir)
    appspecs: dict[Path, AppSpec | None] = {}  # archive -> its appspec; None: unusable
    found = set()
    for event in HOOK_COMMANDS if only is None else HOOK_COMMANDS & {only}:
        try:
            archive = _hook_archive(layout, spec, event)
        except Exception:  # an unreadable marker: the event must run, and fail visibly
            continue
        if archive is None:
            found.add(event)
            continue
        if archive not in appspecs:
            try:
                appspecs[archive] = _load_appspec(archive, spec)
            except Exception:
                appspecs[archive] = None  # as above
        appspec = appspecs[archive]
        if appspec is not None and not appspec.scripts_for(event):
            found.add(event)
    return frozenset(found)


class _CommandError(Exception):
    """A command cannot proceed; the message is what the operator sees."""


def _unknown(message: str) -> CommandResult:
    return CommandResult(ScriptError.UNKNOWN_ERROR, "", message, "")


def _download_bundle(layout: Layout, spec: DeploymentSpec, config: AgentConfig) -> None:
    from shipyard.agent.bundle import BundleError, UnpackLimits, download, fetch_git, unpack

    group, deployment = spec.deployment_group_id, spec.deployment_id
    layout.secure_root()
    ensure_dir(layout.group_dir(group), PRIVATE_MODE)
    _prune_old_deployments(layout, spec, config.max_revisions)
    layout.deployment_dir(group, deployment).mkdir(mode=PRIVATE_MODE, exist_ok=True)
    bundle_file = layout.bundle_file(group, deployment)
    limits = [n for n in (spec.max_bundle_bytes, config.max_bundle_bytes) if n]
    max_bytes = min(limits) if limits else config.max_bundle_bytes
    revision = spec.revision
    try:
        if isinstance(revision, S3Revision):
            if not spec.bundle_url:
                raise _CommandError("deployment specification has no BundleUrl (S3 revision)")
            download(
                spec.bundle_url,
                bundle_file,
                max_bytes=max_bytes,
                etag=revision.etag,
                ca_file=config.ca_file,
            )
            bundle_type = revision.bundle_type
        else:
            if not spec.git_url:
                raise _CommandError("deployment specification has no GitUrl (GitHub revision)")
            fetch_git(spec.git_url, revision.commit_id, bundle_file, max_bytes=max_bytes)
            bundle_type = "tar"  # git archive always writes a tar, whatever BundleType says
        caps = UnpackLimits(config.max_unpacked_bytes, config.max_bundle_members)
        unpack(bundle_file, bundle_type, layout.archive_dir(group, deployment), caps)
    except BundleError as exc:
        raise _CommandError(str(exc)) from None
    layout.mark_most_recent(group, deployment)


def _prune_old_deployments(layout: Layout, spec: DeploymentSpec, max_revisions: int) -> None:
    """Keep ``max_revisions`` deployment directories of the group, the current one included.

    The oldest (by mtime) go first; the last successful install is never removed (the
    same directory: same device and inode, however its marker spells the path).
    """
    # scandir, not iterdir: each entry's type comes with the listing and its stat is
    # taken once; this runs on every DownloadBundle.
    with os.scandir(layout.group_dir(spec.deployment_group_id)) as entries:
        others = [e for e in entries if e.name != spec.deployment_id and e.is_dir()]
    extra = len(others) - max(1, max_revisions) + 1
    if extra <= 0:
        return
    protected = _stat_or_none(layout.last_successful_dir(spec.deployment_group_id))
    if protected is not None:
        others = [e for e in others if not os.path.samestat(e.stat(), protected)]
    others.sort(key=lambda e: e.stat().st_mtime)
    for old in others[:extra]:
        shutil.rmtree(old.path, ignore_errors=True)


def _stat_or_none(path: Path | None) -> os.stat_result | None:
    if path is None:
        return None
    try:
        return os.stat(path)
    except OSError:
        return None


def _install(layout: Layout, spec: DeploymentSpec) -> None:
    from shipyard.agent import install

    group, deployment = spec.deployment_group_id, spec.deployment_id
    archive = layout.archive_dir(group, deployment)
    if not archive.is_dir():
        raise _CommandError(
            f"the revision of deployment {deployment} is not on this host "
            f"({archive} is missing); DownloadBundle must succeed first"
        )
    parsed = _load_appspec(archive, spec)
    _check_tree(archive, parsed, spec)
    try:
        install.install(
            archive_dir=archive,
            appspec=parsed,
            instructions_dir=layout.instructions_dir,
            deployment_group_id=group,
            file_exists_behavior=spec.file_exists_behavior,
        )
    except install.InstallError as exc:
        raise _CommandError(str(exc)) from None
    layout.mark_last_successful(group, deployment)


def _check_tree(archive: Path, parsed: AppSpec, spec: DeploymentSpec) -> None:
    """Refuse a bundle missing what its appspec names, as ``shipyard push`` would have."""
    from shipyard.agent import bundle_rules

    scripts = [script.location for scripts in parsed.hooks.values() for script in scripts]
    sources = [mapping.source for mapping in parsed.files]
    problems = bundle_rules.tree_problems(archive, sources, scripts, spec.appspec_filename)
    problem = bundle_rules.first_fatal(problems)
    if problem is not None:
        raise _CommandError(str(problem))


def _run_hooks(
    layout: Layout,
    spec: DeploymentSpec,
    event: str,
    on_output: Callable[[str], None],
    kill_grace: float,
) -> CommandResult:
    archive = _hook_archive(layout, spec, event)
    if archive is None:  # e.g. ApplicationStop on the first deployment to this host
        return CommandResult(ScriptError.SUCCEEDED, "", "Succeeded", "")
    scripts = _load_appspec(archive, spec).scripts_for(event)
    if not scripts:  # nothing to run: spare building the scripts' environment
        return CommandResult(ScriptError.SUCCEEDED, "", "Succeeded", "")
    run = HookRun(
        event=event,
        archive_dir=archive,
        # Scripts taken from an earlier revision still log into this deployment's log.
        log_file=layout.scripts_log(spec.deployment_group_id, spec.deployment_id),
        env=script_environment(spec, event),
        on_output=on_output,
        kill_grace=kill_grace,
    )
    return run_event(scripts, run)


def _hook_archive(layout: Layout, spec: DeploymentSpec, event: str) -> Path | None:
    """The unpacked revision whose scripts ``event`` runs, or None for a no-op."""
    current = layout.archive_dir(spec.deployment_group_id, spec.deployment_id)
    if current.exists():
        return current
    source = _fallback_source(spec, event)
    if source is None:
        return current  # not downloaded yet: loading its appspec reports that
    if source == "most_recent":
        earlier = layout.most_recent_dir(spec.deployment_group_id)
    else:
        earlier = layout.last_successful_dir(spec.deployment_group_id)
    if earlier is None or not (earlier / ARCHIVE_DIR).is_dir():
        return None
    return earlier / ARCHIVE_DIR


def _fallback_source(spec: DeploymentSpec, event: str) -> str | None:
    if (
        spec.deployment_creator == DeploymentCreator.ROLLBACK.value
        and spec.deployment_type == "BLUE_GREEN"
    ):
        return BLUE_GREEN_ROLLBACK_SOURCES.get(event)
    return "last_successful" if event in PREVIOUS_REVISION_EVENTS else None


def _load_appspec(archive: Path, spec: DeploymentSpec) -> AppSpec:
    try:
        return appspec_file.load(archive, spec.appspec_filename)
    except appspec_file.AppSpecFileError as exc:
        raise _CommandError(str(exc)) from None


def script_environment(spec: DeploymentSpec, event: str) -> dict[str, str]:
    """The agent's environment plus the variables CodeDeploy gives hook scripts."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in AGENT_SECRETS and not k.startswith(AGENT_ENV_PREFIX)
    }
    env.update(
        LIFECYCLE_EVENT=event,
        DEPLOYMENT_ID=spec.deployment_id,
        APPLICATION_NAME=spec.application_name,
        DEPLOYMENT_GROUP_NAME=spec.deployment_group_name,
        DEPLOYMENT_GROUP_ID=spec.deployment_group_id,
    )
    revision = spec.revision
    if isinstance(revision, S3Revision):
        env.update(BUNDLE_BUCKET=revision.bucket, BUNDLE_KEY=revision.key)
        # Like the stock agent, leave out what the revision does not name.
        if revision.version is not None:
            env["BUNDLE_VERSION"] = revision.version
        if revision.etag is not None:
            env["BUNDLE_ETAG"] = revision.etag
    else:
        env["BUNDLE_COMMIT"] = revision.commit_id
    return env


__all__ = [
    "CommandResult",
    "DeploymentSpec",
    "GitHubRevision",
    "S3Revision",
    "execute",
    "is_noop",
    "noop_events",
    "parse_spec",
    "script_environment",
]
