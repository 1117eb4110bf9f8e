"""A small keep-alive HTTP/1.1 client on asyncio streams for SigV4-signed JSON 1.1 calls:
what the load generator's simulated agents (and its bulk registration) speak.

One ``JsonConnection`` per simulated agent: thousands of them in one process cost
little, where a thread per agent or a full HTTP library per call would not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from shipyard import sigv4

REGION = "us-east-1"
JSON_TYPE = "application/x-amz-json-1.1"
API_PREFIX = "CodeDeploy_20141006."
AGENT_PREFIX = "CodeDeployCommandService_v20141006."


class HttpError(Exception):
    """The exchange failed or the server answered with an error object."""


class JsonConnection:
    """One keep-alive HTTP/1.1 connection sending SigV4-signed JSON 1.1 requests.

    Just enough HTTP for a Shipyard server: requests with Content-Length, responses
    with Content-Length (what uvicorn sends for these). Reconnects when the server
    has closed the connection.
    """

    def __init__(
        self, host: str, port: int, creds: sigv4.Credentials, service: str, prefix: str
    ) -> None:
        self.host = host
        self.port = port
        self.host_header = f"{host}:{port}"
        self.creds = creds
        self.service = service
        self.prefix = prefix
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self, op: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = sigv4.sign_headers(
            self.creds,
            method="POST",
            host=self.host_header,
            path="/",
            body=data,
            headers={"Content-Type": JSON_TYPE, "X-Amz-Target": self.prefix + op},
            region=REGION,
            service=self.service,
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        head = "POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        fresh = self._writer is None
        try:
            status, raw = await self._exchange(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            if fresh:
                raise
            status, raw = await self._exchange(request)  # the server closed an idle one
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:  # a proxy's error page (502, 503 from HAProxy): it closes
            await self.close()
            raise HttpError(f"{op}: HTTP {status} (not JSON)") from None
        if status != 200 or "__type" in decoded:
            raise HttpError(f"{op}: HTTP {status} {decoded}")
        result: dict[str, Any] = decoded
        return result

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        raw = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, raw

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
