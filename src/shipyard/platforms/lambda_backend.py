"""Where a Lambda deployment's functions live, reached only through a boto3 ``lambda``
client: the server's own function host (the default), AWS Lambda, or any other
implementation of the Lambda API (the tests use moto's server).

``LambdaAliases`` is everything a deployment does there: check the appspec's function,
alias and versions; move the alias's weight between the two versions; read it back; and
invoke a hook function asynchronously. Its calls block (run them in a worker thread) and
raise ``LambdaBackendError`` with a message a person can act on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from shipyard.config import ConfigError, ServerConfig
from shipyard.errors import InvalidRevision, ShipyardError
from shipyard.platforms.lambda_appspec import LambdaAppSpec

BACKENDS = ("embedded", "aws")
FULL = 100
# Calls are few and small; a stuck endpoint must not hold a shift for long.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
# Hook invocations wait for the function (up to Lambda's 15-minute limit) and are never
# retried by the client: a retry would run the hook twice.
HOOK_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=930, retries={"max_attempts": 1})


class LambdaBackendError(ShipyardError):
    """The Lambda API refused or could not be reached; the message says which call."""


Credentials = Callable[[], tuple[str, str]]


def build_client(
    config: ServerConfig, embedded_key: Credentials, client_config: Config = CLIENT_CONFIG
) -> Any:
    """The ``lambda`` client the server's settings name (``functions_backend``)."""
    if config.functions_backend not in BACKENDS:
        raise ConfigError(
            f"functions_backend must be one of {', '.join(BACKENDS)}; "
            f"got {config.functions_backend!r}"
        )
    if config.functions_backend == "aws":
        # Region and keys from the AWS chain (environment, profile, instance role).
        return boto3.client(
            "lambda",
            region_name=config.functions_region or None,
            endpoint_url=config.functions_endpoint or None,
            config=client_config,
        )
    key_id, secret = embedded_key()
    return boto3.client(
        "lambda",
        endpoint_url=config.functions_endpoint or config.url,
        region_name=config.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=client_config,
    )


class LambdaAliases:
    def __init__(self, client: Any, hook_client: Any = None) -> None:
        self.client = client
        # Built with HOOK_CLIENT_CONFIG (the plain client's retries would re-run a hook).
        self.hook_client = hook_client if hook_client is not None else client

    def check(self, spec: LambdaAppSpec) -> None:
        """The appspec against the backend: the function, both versions and the alias
        exist, and the alias points at CurrentVersion. InvalidRevision otherwise."""
        name = spec.function
        for version in (spec.current_version, spec.target_version):
            self._exists(
                functools.partial(
                    self.client.get_function_configuration, FunctionName=name, Qualifier=version
                ),
                f"function {name} has no published version {version}",
            )
        alias = self._exists(
            lambda: self.client.get_alias(FunctionName=name, Name=spec.alias),
            f"function {name} has no alias {spec.alias}",
        )
        if alias["FunctionVersion"] != spec.current_version:
            raise InvalidRevision(
                f"Resources[0].Properties.CurrentVersion is {spec.current_version} but alias "
                f"{name}:{spec.alias} points at version {alias['FunctionVersion']}"
            )
        extra = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if extra and set(extra) != {spec.target_version}:
            raise InvalidRevision(
                f"alias {name}:{spec.alias} already routes traffic to version(s) "
                f"{', '.join(sorted(extra))}: another shift is under way"
            )

    def _exists(self, call: Callable[[], dict[str, Any]], missing: str) -> dict[str, Any]:
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise InvalidRevision(f"The appspec names what does not exist: {missing}") from None
            raise LambdaBackendError(f"Lambda refused the check: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise LambdaBackendError(f"Lambda API unreachable: {exc}") from None

    def set_weight(self, spec: LambdaAppSpec, weight: int) -> None:
        """``weight`` percent of the alias's traffic to TargetVersion, the rest to
        CurrentVersion; at 100 the alias points at TargetVersion alone."""
        if weight >= FULL:
            primary, extra = spec.target_version, {}
        else:
            primary = spec.current_version
            extra = {spec.target_version: weight / FULL} if weight > 0 else {}
        try:
            self.client.update_alias(
                FunctionName=spec.function,
                Name=spec.alias,
                FunctionVersion=primary,
                RoutingConfig={"AdditionalVersionWeights": extra},
            )
        except ClientError as exc:
            raise LambdaBackendError(f"UpdateAlias {spec.target_id}: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise LambdaBackendError(f"UpdateAlias {spec.target_id}: {exc}") from None

    def weight(self, spec: LambdaAppSpec) -> int:
        """The percent of the alias's traffic on TargetVersion now."""
        try:
            alias = self.client.get_alias(FunctionName=spec.function, Name=spec.alias)
        except (ClientError, BotoCoreError) as exc:
            raise LambdaBackendError(f"GetAlias {spec.target_id}: {exc}") from None
        if alias["FunctionVersion"] == spec.target_version:
            return FULL
        extra = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        return round(float(extra.get(spec.target_version, 0.0)) * FULL)

    def invoke_hook(self, function: str, deployment_id: str, execution_id: str) -> str | None:
        """Invoke a hook function with CodeDeploy's event (reference §3.1) and wait for it
        to return; the function's error if it failed (raised, crashed, timed out), None
        otherwise. CodeDeploy invokes asynchronously and learns nothing of a function
        that fails without reporting until the event times out; waiting for the function
        lets such a failure fail the event at once. A failed invocation (no such
        function, the API unreachable) raises LambdaBackendError; an answer that does not
        come in time is no verdict (the function may still run and report)."""
        payload = {"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": execution_id}
        try:
            answer = self.hook_client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode(),
            )
        except ClientError as exc:
            if error_code(exc) == "TooManyRequestsException":
                # At its concurrency limit: an asynchronous invocation waits for room.
                self._invoke_later(function, payload)
                return None
            raise LambdaBackendError(f"Invoke {function}: {error_text(exc)}") from None
        except ReadTimeoutError:
            return None
        except BotoCoreError as exc:
            raise LambdaBackendError(f"Invoke {function}: {exc}") from None
        if not answer.get("FunctionError"):
            return None
        return f"{answer['FunctionError']}: {_error_message(answer)}"

    def _invoke_later(self, function: str, payload: dict[str, str]) -> None:
        try:
            self.hook_client.invoke(
                FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
            )
        except ClientError as exc:
            raise LambdaBackendError(f"Invoke {function}: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise LambdaBackendError(f"Invoke {function}: {exc}") from None


def _error_message(answer: dict[str, Any]) -> str:
    """The errorMessage of a failed invocation's payload (its raw text if not JSON)."""
    stream = answer.get("Payload")
    raw = stream.read() if stream is not None else b""
    try:
        found = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:500]
    if isinstance(found, dict):
        return str(found.get("errorMessage") or found.get("errorType") or found)[:500]
    return str(found)[:500]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
