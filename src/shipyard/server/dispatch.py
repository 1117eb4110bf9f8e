"""Running an API operation as a principal: the role check, the handler, the audit.

The JSON API (server/app.py) and the console (shipyard.console) both come through
here, so a role means the same on both and every change is audited once.
"""

from __future__ import annotations

import inspect

from shipyard.errors import ApiError
from shipyard.server import audit, permissions
from shipyard.server.context import Call, Json, Principal, Services
from shipyard.server.operations import API_OPERATIONS


def require(principal: Principal, operation: str) -> None:
    """AccessDeniedException naming the missing permission, unless the role holds it."""
    if not permissions.allowed(principal, operation):
        raise ApiError("AccessDeniedException", permissions.denial(principal, operation), 403)


async def run_operation(
    services: Services, principal: Principal, operation: str, body: Json
) -> Json:
    require(principal, operation)
    result = API_OPERATIONS[operation](Call(services, principal, body))
    if inspect.isawaitable(result):
        result = await result
    if permissions.is_change(operation):
        audit.record(services, principal, operation, body, result)
    return result
