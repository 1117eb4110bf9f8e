"""Errors that cross the API boundary.

    ShipyardError                 base of everything raised on purpose
    └── ApiError                  rendered as the AWS JSON error shape, HTTP 400
        (name = the model's exception name, e.g. "ApplicationDoesNotExistException")

A failed deployment is never an exception: it is a status plus an ErrorCode
(see model.ErrorCode). Agent-side failures are results with a LifecycleErrorCode.
"""

from __future__ import annotations


class ShipyardError(Exception):
    """Base class for errors Shipyard raises deliberately."""


class ApiError(ShipyardError):
    """An error answered to an API caller as ``{"__type": name, "message": ...}``."""

    def __init__(self, name: str, message: str, status: int = 400) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.status = status


def api_error(name: str, message: str) -> ApiError:
    """Shorthand: ``raise api_error("InvalidApplicationNameException", "...")``."""
    return ApiError(name, message)
