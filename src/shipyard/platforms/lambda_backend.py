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
from botocore.exceptions import BotoCoreError, ClientError

from shipyard.config import ConfigError, ServerConfig
from shipyard.errors import InvalidRevision, ShipyardError
from shipyard.platforms.lambda_appspec import LambdaAppSpec

BACKENDS = ("embedded", "aws")
FULL = 100
# Calls are few and small; a stuck endpoint must not hold a shift for long.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})


class LambdaBackendError(ShipyardError):
    """The Lambda API refused or could not be reached; the message says which call."""


Credentials = Callable[[], tuple[str, str]]


def build_client(config: ServerConfig, embedded_key: Credentials) -> Any:
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
            config=CLIENT_CONFIG,
        )
    key_id, secret = embedded_key()
    return boto3.client(
        "lambda",
        endpoint_url=config.functions_endpoint or config.url,
        region_name=config.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=CLIENT_CONFIG,
    )


class LambdaAliases:
    def __init__(self, client: Any) -> None:
        self.client = client

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

    def invoke_hook(self, function: str, deployment_id: str, execution_id: str) -> None:
        """Invoke a hook function asynchronously, as CodeDeploy does (reference §3.1)."""
        payload = {"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": execution_id}
        try:
            self.client.invoke(
                FunctionName=function,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except ClientError as exc:
            raise LambdaBackendError(f"Invoke {function}: {error_text(exc)}") from None
        except BotoCoreError as exc:
            raise LambdaBackendError(f"Invoke {function}: {exc}") from None


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_text(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
