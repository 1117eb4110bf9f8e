"""What a Lambda API operation is given, and how it answers (REST-JSON)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from shipyard.errors import ApiError
from shipyard.functions.names import LATEST, function_arn, invalid
from shipyard.server.context import Principal, Services

Json = dict[str, Any]


@dataclass
class LambdaCall:
    services: Services
    principal: Principal
    params: dict[str, str]  # path members, decoded
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    # What the operation read beside the key lookup (api.READ_WITH_KEY).
    prefetched: Any = None

    @property
    def region(self) -> str:
        return self.services.config.region

    def now(self) -> float:
        return self.services.clock()

    def json(self) -> Json:
        if not self.body:
            return {}
        try:
            payload = json.loads(self.body)
        except ValueError:
            raise ApiError(
                "InvalidRequestContentException", "Could not parse request body into json"
            ) from None
        if not isinstance(payload, dict):
            raise ApiError("InvalidRequestContentException", "The request body must be an object")
        return payload

    def max_items(self) -> int:
        raw = self.query.get("MaxItems", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 10000:
            raise invalid(f"Invalid MaxItems {raw!r}: must be between 1 and 10000")
        return min(int(raw), 50)

    def page(self, items: list[Json], key: str) -> Json:
        """One page of ``items`` (Marker is the index to continue from)."""
        marker = self.query.get("Marker", "0") or "0"
        if not marker.isdigit():
            raise invalid(f"Invalid Marker {marker!r}")
        start, size = int(marker), self.max_items()
        answer: Json = {key: items[start : start + size]}
        if start + size < len(items):
            answer["NextMarker"] = str(start + size)
        return answer


def json_response(payload: Json | None, status: int = 200) -> Response:
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def error_response(exc: ApiError) -> Response:
    """Lambda's error shape: the name in ``x-amzn-ErrorType``, the text in ``message``."""
    response = json_response({"Type": "User", "message": exc.message}, exc.status)
    response.headers["x-amzn-ErrorType"] = exc.name
    if exc.name == "TooManyRequestsException":
        response.headers["Retry-After"] = "1"
    return response


def configuration(doc: Json, region: str, *, qualify_latest: bool = False) -> Json:
    """A FunctionConfiguration: the stored doc plus its ARN (qualified for versions)."""
    version = doc["Version"]
    qualified = version != LATEST or qualify_latest
    arn = function_arn(region, doc["FunctionName"], version if qualified else None)
    out = {"FunctionArn": arn, **doc}
    out["LoggingConfig"] = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{doc['FunctionName']}"}
    if not doc.get("Environment", {}).get("Variables"):
        out.pop("Environment", None)
    return out


def alias_configuration(doc: Json, function: str, region: str) -> Json:
    out = {"AliasArn": function_arn(region, function, doc["Name"]), **doc}
    if not out.get("RoutingConfig", {}).get("AdditionalVersionWeights"):
        out.pop("RoutingConfig", None)
    return out
