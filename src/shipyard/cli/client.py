"""Talking to a Shipyard server from the command line.

``ShipyardClient`` wraps the boto3 ``codedeploy`` and ``s3`` clients pointed at the
server, and signs the Shipyard extension operations (which botocore's model does not
know) itself. Every failure comes out as a ``CliError`` carrying one readable line, so
the CLI never shows a traceback for a refused connection or an API error.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.exceptions
import botocore.parsers
from botocore.config import Config as BotoConfig

from shipyard import sigv4
from shipyard.cli.upload_progress import ProgressReader

if TYPE_CHECKING:
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_s3 import S3Client

API_TARGET_PREFIX = "CodeDeploy_20141006."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
BATCH_GET_TARGETS_MAX = 25  # BatchGetDeploymentTargets accepts at most 25 ids
REQUEST_TIMEOUT = 60.0
NO_CREDENTIALS = (
    "no AWS credentials found; set AWS_SHARED_CREDENTIALS_FILE to the server's "
    "DATA_DIR/credentials or pass --profile"
)


# The exit statuses of ``shipyard`` (docs/cli.md, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1  # the deployment (or rollback) failed or was stopped; an operation failed
EXIT_USAGE = 2  # a mistake on the command line or in the bundle
EXIT_UNREACHABLE = 3  # no Shipyard server answers at the endpoint, or it went away
EXIT_REFUSED = 4  # the server refused the request (an API error such as a missing name)
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure to report as one line, with its exit status (see the ``EXIT_*`` values)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _error_code(raw: str) -> str:
    """Normalise an AWS error type the way botocore does (``ns#Name:extra`` -> ``Name``)."""
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


@contextmanager
def readable_errors(endpoint: str) -> Iterator[None]:
    """Turn botocore failures raised inside the block into ``CliError`` lines."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code") or "Error"
        message = " ".join((error.get("Message") or "(no message)").split())
        if str(code).isdigit():  # a bare HTTP status: whatever answered is not Shipyard
            raise CliError(not_shipyard(endpoint, int(code)), EXIT_UNREACHABLE) from None
        raise CliError(f"{code}: {message}{hint_for(str(code))}", EXIT_REFUSED) from None
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectionClosedError,
        botocore.exceptions.ReadTimeoutError,
    ):
        raise CliError(unreachable(endpoint), EXIT_UNREACHABLE) from None
    except botocore.exceptions.NoCredentialsError:
        raise CliError(NO_CREDENTIALS) from None
    except botocore.exceptions.ParamValidationError as exc:
        raise CliError(" ".join(str(exc).split()), exit_code=2) from None
    except botocore.parsers.ResponseParserError:
        raise CliError(not_shipyard(endpoint, 200), EXIT_UNREACHABLE) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise CliError(" ".join(str(exc).split()), EXIT_UNREACHABLE) from None


def unreachable(endpoint: str) -> str:
    return f"cannot reach Shipyard at {endpoint} (is the server running?)"


def not_shipyard(endpoint: str, status: int) -> str:
    return (
        f"{endpoint} answered HTTP {status} without a Shipyard error: is it a Shipyard server, "
        "and is the endpoint its root URL (e.g. http://127.0.0.1:8420)?"
    )


HINTS = {
    "ApplicationDoesNotExistException": " (shipyard app list; shipyard app create NAME)",
    "DeploymentGroupDoesNotExistException": " (shipyard group show APP; shipyard group create)",
    "DeploymentDoesNotExistException": " (shipyard history APP lists deployments)",
}


def hint_for(code: str) -> str:
    """Where a user stuck on ``code`` can go next."""
    return HINTS.get(code, "")


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` without a trailing slash, or a usage error naming what is wrong with it."""
    url = urlsplit(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise CliError(
            f"--endpoint {endpoint!r} is not a URL: write it with its scheme, "
            f"e.g. http://{endpoint if '//' not in endpoint else '127.0.0.1:8420'}",
            EXIT_USAGE,
        )
    if url.path.strip("/") or url.query or url.fragment:
        root = f"{url.scheme}://{url.netloc}"
        raise CliError(
            f"--endpoint {endpoint!r} has a path: Shipyard is served at the root ({root})",
            EXIT_USAGE,
        )
    try:
        url.port  # noqa: B018 - a bad port raises here
    except ValueError:
        raise CliError(f"--endpoint {endpoint!r} has an invalid port", EXIT_USAGE) from None
    return endpoint.rstrip("/")


class ShipyardClient:
    """The CodeDeploy API, the bundle store and the Shipyard extensions of one server."""

    def __init__(self, endpoint: str, region: str, session: boto3.Session | None = None) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.region = region
        self.session = session if session is not None else boto3.Session()
        config = BotoConfig(
            retries={"mode": "standard", "total_max_attempts": 3},
            connect_timeout=5,
            read_timeout=REQUEST_TIMEOUT,
            s3={"addressing_style": "path"},
        )
        with readable_errors(self.endpoint):
            self.codedeploy: CodeDeployClient = self.session.client(
                "codedeploy", endpoint_url=self.endpoint, region_name=region, config=config
            )
            self.s3: S3Client = self.session.client(
                "s3", endpoint_url=self.endpoint, region_name=region, config=config
            )
            self.cloudformation: Any = self.session.client(
                "cloudformation", endpoint_url=self.endpoint, region_name=region, config=config
            )

    def api(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call a CodeDeploy operation by its model name, e.g. ``api("GetDeployment", ...)``."""
        method = getattr(self.codedeploy, botocore.xform_name(operation))
        with readable_errors(self.endpoint):
            response: dict[str, Any] = dict(method(**params))
        meta = response.pop("ResponseMetadata", {})
        content_type = str(meta.get("HTTPHeaders", {}).get("content-type", ""))
        if "json" not in content_type:  # an HTML page answered: some other server
            raise CliError(
                not_shipyard(self.endpoint, meta.get("HTTPStatusCode", 200)), EXIT_UNREACHABLE
            )
        return response

    def stacks_api(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call a CloudFormation operation by its model name (the server's stacks)."""
        method = getattr(self.cloudformation, botocore.xform_name(operation))
        with readable_errors(self.endpoint):
            response: dict[str, Any] = dict(method(**params))
        response.pop("ResponseMetadata", None)
        return response

    def deployment_targets(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every target of a deployment, as BatchGetDeploymentTargets returns them."""
        target_ids: list[str] = []
        token = ""
        while True:
            page = self.api(
                "ListDeploymentTargets",
                deploymentId=deployment_id,
                **({"nextToken": token} if token else {}),
            )
            target_ids.extend(page.get("targetIds", []))
            token = page.get("nextToken") or ""
            if not token:
                break
        targets: list[dict[str, Any]] = []
        for start in range(0, len(target_ids), BATCH_GET_TARGETS_MAX):
            chunk = target_ids[start : start + BATCH_GET_TARGETS_MAX]
            batch = self.api(
                "BatchGetDeploymentTargets", deploymentId=deployment_id, targetIds=chunk
            )
            targets.extend(batch.get("deploymentTargets", []))
        return targets

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it already exists."""
        with readable_errors(self.endpoint):
            try:
                self.s3.head_bucket(Bucket=bucket)
                return
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
            try:
                self.s3.create_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise

    def upload(
        self, path: Path, bucket: str, key: str, progress: TextIO | None = None
    ) -> dict[str, str]:
        """Upload a file; return its ``eTag`` (unquoted) and ``version`` when the store has
        one. With ``progress`` (a terminal), a progress bar is drawn there."""
        with readable_errors(self.endpoint), path.open("rb") as raw:
            body: Any = raw
            if progress is not None:
                body = ProgressReader(raw, path.stat().st_size, progress, f"Uploading {key}")
            response = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
            if progress is not None:
                body.finish()
        stored = {"eTag": response.get("ETag", "").strip('"')}
        if response.get("VersionId"):
            stored["version"] = response["VersionId"]
        return stored

    def call_extension(self, op_name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a SigV4-signed JSON 1.1 request for a Shipyard extension operation."""
        with readable_errors(self.endpoint):
            found = self.session.get_credentials()
        frozen = found.get_frozen_credentials() if found is not None else None
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise CliError(NO_CREDENTIALS)
        url = urlsplit(self.endpoint)
        payload = json.dumps(dict(body)).encode()
        headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": API_TARGET_PREFIX + op_name}
        if frozen.token:
            headers["X-Amz-Security-Token"] = frozen.token
        signed = sigv4.sign_headers(
            sigv4.Credentials(frozen.access_key, frozen.secret_key),
            method="POST",
            host=url.netloc,
            path=url.path or "/",
            body=payload,
            headers=headers,
            region=self.region,
            service="codedeploy",
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        target = self.endpoint if url.path else self.endpoint + "/"
        request = urllib.request.Request(target, data=payload, headers=signed, method="POST")
        return _send(request, self.endpoint)


def _send(request: urllib.request.Request, endpoint: str) -> dict[str, Any]:
    # AWS_CA_BUNDLE is how boto3 users trust a private CA; honour it here too.
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT, context=context) as reply:
            result = json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise _http_error(exc, endpoint) from None
    except (urllib.error.URLError, OSError):
        raise CliError(unreachable(endpoint), EXIT_UNREACHABLE) from None
    except ValueError:
        raise CliError(not_shipyard(endpoint, 200), EXIT_UNREACHABLE) from None
    if not isinstance(result, dict):
        raise CliError(not_shipyard(endpoint, 200), EXIT_UNREACHABLE)
    return result


def _http_error(exc: urllib.error.HTTPError, endpoint: str) -> CliError:
    try:
        error = json.loads(exc.read())
    except ValueError:
        error = None
    if not isinstance(error, dict) or not error.get("__type"):
        return CliError(not_shipyard(endpoint, exc.code), EXIT_UNREACHABLE)
    code = _error_code(str(error["__type"]))
    message = str(error.get("message") or error.get("Message") or "(no message)")
    return CliError(f"{code}: {' '.join(message.split())}{hint_for(code)}", EXIT_REFUSED)


__all__ = ["CliError", "ShipyardClient", "check_endpoint", "readable_errors"]
