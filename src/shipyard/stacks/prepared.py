"""A stack's template with its parameter values: what every operation starts from."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.model import ACCOUNT_ID
from shipyard.stacks.parameters import pseudo_values, typed_values
from shipyard.stacks.template import Template, load
from shipyard.stacks.text import parse


@dataclass(frozen=True)
class Prepared:
    template: Template
    # Ref values: typed parameters and the pseudo parameters.
    parameters: dict[str, Any]
    conditions: dict[str, bool]

    @property
    def live(self) -> dict[str, dict[str, Any]]:
        return self.template.live(self.conditions)

    @property
    def order(self) -> list[str]:
        return self.template.order(self.conditions)


def prepare(
    body: str, values: Mapping[str, str], region: str, stack_name: str, stack_id: str
) -> Prepared:
    declared = parse(body).get("Parameters") or {}
    parameters = {
        **pseudo_values(region, ACCOUNT_ID, stack_name, stack_id),
        **typed_values(declared, values),
    }
    template = load(body, parameters)
    return Prepared(template, parameters, template.conditions(parameters))


def stack_arn(region: str, name: str) -> str:
    return f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{name}/{uuid.uuid4()}"


def change_set_arn(region: str, name: str) -> str:
    return f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:changeSet/{name}/{uuid.uuid4()}"
