"""The one error the template engine raises: CloudFormation's ValidationError."""

from __future__ import annotations

from shipyard.errors import ShipyardError


class TemplateError(ShipyardError):
    """A template, parameter or stack request CloudFormation would refuse; the message
    is the one CloudFormation gives (answered as ``ValidationError``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def format_error(detail: str) -> TemplateError:
    return TemplateError(f"Template format error: {detail}")
