"""The boto3 clients providers call: the server's own endpoint with its stack key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shipyard.stacks.providers.protocol import ProviderError

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})


@dataclass(frozen=True)
class Clients:
    endpoint_url: str
    region: str
    key: Callable[[], tuple[str, str]]

    def client(self, service: str) -> Any:
        key_id, secret = self.key()
        factory: Any = boto3.client  # typed per service name; this one is any of them
        return factory(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=CLIENT_CONFIG,
        )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def calling(what: str, call: Callable[[], Any], missing_ok: tuple[str, ...] = ()) -> Any:
    """``call()``; a refusal as ProviderError naming ``what`` (None for ``missing_ok``)."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) in missing_ok:
            return None
        message = exc.response.get("Error", {}).get("Message", str(exc))
        raise ProviderError(f"{what}: {error_code(exc)}: {message}") from None
    except BotoCoreError as exc:
        raise ProviderError(f"{what}: {exc}") from None
